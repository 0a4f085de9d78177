# Per-target settings shared by every Ringo target: warnings, sanitizers,
# the repository root as include root ("syscall/fd.h"), and the allocator.

set(RINGO_WARNINGS -Wall -Wextra -Wpedantic -Wshadow=local -Wnon-virtual-dtor -Wimplicit-fallthrough)
if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
  set(RINGO_WARNINGS -Wall -Wextra -Wpedantic -Wshadow-uncaptured-local -Wnon-virtual-dtor
      -Wimplicit-fallthrough -Wno-gnu-zero-variadic-macro-arguments)
endif()
if(RINGO_WERROR)
  list(APPEND RINGO_WARNINGS -Werror)
endif()

if(RINGO_SANITIZE)
  set(RINGO_SANITIZE_FLAGS -fsanitize=${RINGO_SANITIZE} -fno-omit-frame-pointer)
  if(RINGO_SANITIZE MATCHES "undefined")
    list(APPEND RINGO_SANITIZE_FLAGS -fno-sanitize-recover=all)
  endif()
  add_compile_options(${RINGO_SANITIZE_FLAGS})
  add_link_options(${RINGO_SANITIZE_FLAGS})
endif()

# Sites (__builtin_FILE) and asserts name files relative to the repository,
# never by a build machine's absolute path.
add_compile_options(-fmacro-prefix-map=${PROJECT_SOURCE_DIR}/=)

# A Ringo library or executable: our warnings, our include root.
function(ringo_target_defaults target)
  target_compile_options(${target} PRIVATE ${RINGO_WARNINGS})
  get_target_property(type ${target} TYPE)
  if(type STREQUAL "INTERFACE_LIBRARY")
    return()
  endif()
  target_include_directories(${target} PUBLIC ${PROJECT_SOURCE_DIR})
endfunction()

# An executable: as above, plus jemalloc in non-sanitizer builds.
function(ringo_executable target)
  add_executable(${target} ${ARGN})
  ringo_target_defaults(${target})
  if(RINGO_JEMALLOC AND NOT RINGO_SANITIZE)
    target_link_libraries(${target} PRIVATE ${RINGO_JEMALLOC_LIB})
    target_compile_definitions(${target} PRIVATE RINGO_WITH_JEMALLOC=1)
  endif()
endfunction()
