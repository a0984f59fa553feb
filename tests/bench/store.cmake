# bench_store: write rate, bytes per value and query latency of the embedded
# SQLite store (docs/storage.md quotes its figures). Run it by hand:
#   bench_store [--vms N] [--seconds S] [--batch FRAMES] [--dir DIR] [--keep]
if(TARGET pantala-store)
    add_executable(bench_store ${CMAKE_CURRENT_LIST_DIR}/bench_store.c)
    target_link_libraries(bench_store PRIVATE pantala-store PkgConfig::SQLITE pt_build_flags m)
endif()
