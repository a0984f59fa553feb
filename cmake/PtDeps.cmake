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
