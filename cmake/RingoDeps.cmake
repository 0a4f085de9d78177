# Finds Ringo's third-party dependencies, all from Debian 12 packages.
# A missing one stops configuration with the name of the package to install;
# scripts/install-deps.sh installs them all.

function(ringo_missing what package)
  message(FATAL_ERROR
    "Ringo: ${what} not found. Install the Debian package '${package}' "
    "(or run scripts/install-deps.sh as root, which installs everything).")
endfunction()

find_package(fmt CONFIG QUIET)
if(NOT fmt_FOUND)
  ringo_missing("fmt" libfmt-dev)
endif()

find_package(Threads REQUIRED)

# liburing ships no CMake config; only reactor/*uring* may include it.
find_path(RINGO_URING_INCLUDE liburing.h)
find_library(RINGO_URING_LIB uring)
if(NOT RINGO_URING_INCLUDE OR NOT RINGO_URING_LIB)
  ringo_missing("liburing" liburing-dev)
endif()
add_library(ringo_uring INTERFACE)
target_include_directories(ringo_uring SYSTEM INTERFACE ${RINGO_URING_INCLUDE})
target_link_libraries(ringo_uring INTERFACE ${RINGO_URING_LIB})

# Boost.Context; only fiber/internal/context.* may include it.
find_package(boost_context CONFIG QUIET)
if(NOT boost_context_FOUND)
  ringo_missing("Boost.Context" libboost-context-dev)
endif()

# llhttp: Debian's node-llhttp ships the generated C sources, compiled here as a
# static library; only net/http/parser.* may include llhttp.h.
set(RINGO_LLHTTP_SRC_DIR /usr/share/llhttp CACHE PATH "llhttp C sources (node-llhttp)")
set(RINGO_LLHTTP_INCLUDE_DIR /usr/share/include/llhttp CACHE PATH "llhttp.h (node-llhttp)")
if(NOT EXISTS ${RINGO_LLHTTP_SRC_DIR}/llhttp.c OR NOT EXISTS ${RINGO_LLHTTP_INCLUDE_DIR}/llhttp.h)
  ringo_missing("llhttp C sources (${RINGO_LLHTTP_SRC_DIR}/llhttp.c)" node-llhttp)
endif()
add_library(ringo_llhttp STATIC
  ${RINGO_LLHTTP_SRC_DIR}/api.c ${RINGO_LLHTTP_SRC_DIR}/http.c ${RINGO_LLHTTP_SRC_DIR}/llhttp.c)
target_include_directories(ringo_llhttp SYSTEM PUBLIC ${RINGO_LLHTTP_INCLUDE_DIR})
set_target_properties(ringo_llhttp PROPERTIES POSITION_INDEPENDENT_CODE ON C_STANDARD 11)
target_compile_options(ringo_llhttp PRIVATE -w)  # generated third-party code: not ours to warn about

if(RINGO_JEMALLOC AND NOT RINGO_SANITIZE)
  find_library(RINGO_JEMALLOC_LIB jemalloc)
  if(NOT RINGO_JEMALLOC_LIB)
    ringo_missing("jemalloc" libjemalloc-dev)
  endif()
endif()

if(RINGO_BUILD_TESTS)
  find_package(GTest CONFIG QUIET)
  if(NOT GTest_FOUND)
    ringo_missing("GoogleTest" "libgtest-dev")
  endif()
  include(GoogleTest)
endif()

if(RINGO_BUILD_BENCH)
  find_package(benchmark CONFIG QUIET)
  if(NOT benchmark_FOUND)
    ringo_missing("Google Benchmark" libbenchmark-dev)
  endif()
endif()
