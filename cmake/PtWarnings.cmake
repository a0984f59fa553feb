# Compiler warnings and sanitizers, applied to every Pantala target through
# the interface library pt_build_flags.
add_library(pt_build_flags INTERFACE)
target_compile_options(pt_build_flags INTERFACE
    -Wall -Wextra -Wshadow -Wstrict-prototypes -Wmissing-prototypes
    -Wformat=2 -Wno-unused-parameter)
# snprintf truncation is deliberate where it happens (log lines, messages);
# paths that must not truncate check the return value. (gcc only.)
include(CheckCCompilerFlag)
check_c_compiler_flag(-Wformat-truncation PT_HAVE_WFORMAT_TRUNCATION)
if(PT_HAVE_WFORMAT_TRUNCATION)
    target_compile_options(pt_build_flags INTERFACE -Wno-format-truncation)
endif()
target_compile_definitions(pt_build_flags INTERFACE _GNU_SOURCE)
if(PT_WERROR)
    target_compile_options(pt_build_flags INTERFACE -Werror)
endif()
if(PT_SANITIZE)
    target_compile_options(pt_build_flags INTERFACE
        -fsanitize=${PT_SANITIZE} -fno-omit-frame-pointer -fno-sanitize-recover=all)
    target_link_options(pt_build_flags INTERFACE -fsanitize=${PT_SANITIZE})
endif()
