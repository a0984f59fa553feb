# PT_AGENT_STATIC: pantala-agent as one static executable on musl libc
# (Debian's musl-tools), so it runs on any Linux distribution, old or new,
# glibc or not, with no shared library at all.
#
# What links under musl (Debian 12, checked with `nm -u` on the archives):
#  - libcrypto.a: no. It calls glibc-only symbols (eight __*_chk fortify
#    functions, getcontext/makecontext/setcontext) and relies on glibc's
#    structure layouts. The agent does not need it: common/sha256.c.
#  - libjansson.a, libmsgpuck.a: yes, with four glibc fortify entry points
#    (__snprintf_chk, __vsnprintf_chk, __strncpy_chk, __fprintf_chk) that
#    common/compat/glibc_fortify.c provides; all else they call is in musl
#    with the same ABI.
#  - msgpack-c: the encoder uses only its header's inline packing functions,
#    so libmsgpackc.a is not linked at all.
#
# Headers: musl-gcc searches only musl's include directory, and adding
# /usr/include would let glibc's headers in. So the four third-party headers
# the agent needs are linked into a directory of their own.

include(CheckCSourceCompiles)
check_c_source_compiles("
#include <stdio.h>
#ifdef __GLIBC__
#error glibc
#endif
int main(void) { return 0; }" PT_LIBC_NOT_GLIBC)
if(NOT PT_LIBC_NOT_GLIBC)
    message(FATAL_ERROR "PT_AGENT_STATIC needs musl-gcc as the C compiler "
        "(${CMAKE_C_COMPILER} uses glibc). Install it with: sudo apt-get install musl-tools, "
        "and configure in a fresh build directory without CC set.")
endif()

set(_inc ${CMAKE_BINARY_DIR}/static-deps/include)
file(MAKE_DIRECTORY ${_inc})
foreach(h jansson.h jansson_config.h msgpack.h msgpack msgpuck.h)
    find_path(_dir_${h} ${h} PATHS /usr/include NO_CMAKE_FIND_ROOT_PATH)
    if(NOT _dir_${h})
        message(FATAL_ERROR "PT_AGENT_STATIC: header ${h} not found "
            "(scripts/deps.sh installs libjansson-dev, libmsgpack-dev, libmsgpuck-dev)")
    endif()
    file(CREATE_LINK ${_dir_${h}}/${h} ${_inc}/${h} SYMBOLIC)
endforeach()

# The static archives, by full path: musl-gcc's library path is musl's, and
# CMake finds no multiarch directory for it, so Debian's is named here
# (x86_64-linux-gnu, aarch64-linux-gnu, ...).
string(TOLOWER "${CMAKE_SYSTEM_PROCESSOR}" _cpu)
if(_cpu STREQUAL "amd64")
    set(_cpu x86_64)
elseif(_cpu STREQUAL "arm64")
    set(_cpu aarch64)
endif()
function(pt_static_archive var name debpkg)
    find_library(${var} NAMES lib${name}.a
        PATHS /usr/lib/${_cpu}-linux-gnu /usr/lib NO_DEFAULT_PATH)
    if(NOT ${var})
        message(FATAL_ERROR "PT_AGENT_STATIC: lib${name}.a not found: sudo apt-get install ${debpkg}")
    endif()
    message(STATUS "Static ${name}: ${${var}}")
endfunction()
pt_static_archive(PT_JANSSON_A jansson libjansson-dev)
pt_static_archive(PT_MSGPUCK_A msgpuck libmsgpuck-dev)

add_library(pt-glibc-fortify STATIC ${CMAKE_SOURCE_DIR}/common/compat/glibc_fortify.c)

# The same target names pt_require() makes, so common/ and agent/ link
# unchanged.
add_library(PkgConfig::JANSSON INTERFACE IMPORTED GLOBAL)
set_target_properties(PkgConfig::JANSSON PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES ${_inc}
    INTERFACE_LINK_LIBRARIES "${PT_JANSSON_A};pt-glibc-fortify")
add_library(PkgConfig::MSGPACK INTERFACE IMPORTED GLOBAL)
set_target_properties(PkgConfig::MSGPACK PROPERTIES INTERFACE_INCLUDE_DIRECTORIES ${_inc})
add_library(Pt::MSGPUCK INTERFACE IMPORTED GLOBAL)
set_target_properties(Pt::MSGPUCK PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES ${_inc}
    INTERFACE_LINK_LIBRARIES "${PT_MSGPUCK_A};pt-glibc-fortify")

# Small code: every function and object in its own section, so
# --gc-sections (agent/CMakeLists.txt) drops what is not called.
target_compile_options(pt_build_flags INTERFACE -ffunction-sections -fdata-sections)
