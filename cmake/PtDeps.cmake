# pt_require(PREFIX pkg-config-name debian-package)
# Finds a dependency through pkg-config and creates the imported target
# PkgConfig::PREFIX; stops with a message naming the Debian package when it is
# missing, so a new contributor knows exactly what to install.
find_package(PkgConfig QUIET)
if(NOT PKG_CONFIG_FOUND)
    message(FATAL_ERROR "pkg-config not found: install it with 'sudo apt-get install pkg-config'")
endif()

function(pt_require prefix pcname debpkg)
    if(TARGET PkgConfig::${prefix})
        return()
    endif()
    pkg_check_modules(${prefix} QUIET IMPORTED_TARGET GLOBAL ${pcname})
    if(NOT ${prefix}_FOUND)
        message(FATAL_ERROR
            "Missing dependency '${pcname}' (pkg-config). "
            "On Debian/Ubuntu install it with: sudo apt-get install ${debpkg}\n"
            "(scripts/deps.sh installs every build dependency at once.)")
    endif()
    message(STATUS "Found ${pcname} ${${prefix}_VERSION}")
endfunction()

# pt_require_lib(PREFIX header library debian-package)
# For libraries without a pkg-config file: finds the header and the
# library and creates the imported target Pt::PREFIX.
function(pt_require_lib prefix header lib debpkg)
    if(TARGET Pt::${prefix})
        return()
    endif()
    find_path(${prefix}_INCLUDE_DIR ${header})
    find_library(${prefix}_LIBRARY ${lib})
    if(NOT ${prefix}_INCLUDE_DIR OR NOT ${prefix}_LIBRARY)
        message(FATAL_ERROR
            "Missing dependency '${lib}' (${header}). "
            "On Debian/Ubuntu install it with: sudo apt-get install ${debpkg}\n"
            "(scripts/deps.sh installs every build dependency at once.)")
    endif()
    add_library(Pt::${prefix} UNKNOWN IMPORTED GLOBAL)
    set_target_properties(Pt::${prefix} PROPERTIES
        IMPORTED_LOCATION ${${prefix}_LIBRARY}
        INTERFACE_INCLUDE_DIRECTORIES ${${prefix}_INCLUDE_DIR})
    message(STATUS "Found ${lib}: ${${prefix}_LIBRARY}")
endfunction()
