# check_layers.cmake: the #include rules of DESIGN.md, "Layers", checked on a source tree.
#
#   cmake -DROOT=<repository root> -P tests/layering/check_layers.cmake
#
# What it checks, in every *.h *.hpp *.c *.cc *.cpp *.cu *.cuh file of the layer folders and
# of tests/ and bench/ (tests/layering/fixtures/ is skipped: those trees break the rules on
# purpose, and the self-tests run this script on each of them as its own ROOT):
#   1. No include points up the layer map. Lowest first: syscall, reactor, fiber, net,
#      serving, then tools and examples; a file of layer L includes only layers <= L, and
#      tools/ and examples/ never include each other. Applies to the layer folders only.
#   2. <layer>/internal/ is private: only that layer, and its own tests/<layer>/ and
#      bench/<layer>/, include it.
#   3. Third-party headers stay behind one wall each, everywhere in the tree:
#      liburing* only from reactor/*uring* (and tests/ or bench/ files named *uring*),
#      boost/context/ only from fiber/internal/context.*, llhttp* only from
#      net/http/parser.*, cuda* cublas* curand* only from serving/**/cuda/ (and
#      tests/**/cuda/, bench/**/cuda/).
# Each violation is one line, "layering: FILE:LINE includes "X": WHY"; the script ends with
# "layering: N files checked, M violations" and fails (FATAL_ERROR) when M > 0.
#
# Why: each layer folder is one CMake library linking only to the layers below it, and an
# include pointing the other way is a bug the linker may not see (header-only code, inline
# functions). Like Go's go/build/deps_test.go, the dependency rules are data in one place
# and a test fails the moment the tree disagrees, instead of a reviewer catching it.
#
# How includes are read: `#include "x"` and `#include <x>`, any whitespace around '#'.
# A quoted include is looked up next to the including file first, then at the root, the way
# the compiler does ("internal/ring.h" in reactor/ means reactor/internal/ring.h). An
# angle include counts as ours only if the path exists in the tree, so <net/if.h> (libc)
# is not mistaken for our net/ layer. Includes inside comments or #if 0 blocks are still
# read; the rules are simple enough that this has not mattered.
#
# Alternatives rejected:
#   - a Python (or shell + grep) script: Python is not among the project's dependencies,
#     and cmake is the one tool every machine that builds Ringo already has;
#   - compiler-driven checks (-H, -MMD output, include-what-you-use): they only see files
#     that are compiled in the current configuration (no CUDA, no uring on some hosts) and
#     need a build first; this scans the source text, in a second, on any machine;
#   - per-target include directories that make upward includes fail to compile: every
#     target must see the repository root ("syscall/fd.h"), so the paths cannot be hidden.

cmake_minimum_required(VERSION 3.25)

if(NOT ROOT OR NOT IS_DIRECTORY "${ROOT}")
  message(FATAL_ERROR "layering: usage: cmake -DROOT=<repository root> -P check_layers.cmake")
endif()
cmake_path(ABSOLUTE_PATH ROOT NORMALIZE)

# The layer map, lowest first. tools and examples share the top rank (see rank_of).
set(LAYERS syscall reactor fiber net serving tools examples)
set(EXTENSIONS h hpp c cc cpp cu cuh)
set(SKIP "^tests/layering/fixtures/|(^|/)(build|CMakeFiles)/")

# Third-party rules: <name>_INCLUDE matches the included name, <name>_ALLOWED matches the
# files (relative to ROOT) that may include it, <name>_WHY is the message.
set(THIRD_PARTY liburing boost_context llhttp cuda)
set(liburing_INCLUDE "^liburing")
set(liburing_ALLOWED "^reactor/(internal/)?[^/]*uring[^/]*$|^(tests|bench)/(.*/)?[^/]*uring[^/]*$")
set(liburing_WHY "only reactor/*uring* may include liburing")
set(boost_context_INCLUDE "^boost/context/")
set(boost_context_ALLOWED "^fiber/internal/context\\.[^/]*$")
set(boost_context_WHY "only fiber/internal/context.* may include Boost.Context")
set(llhttp_INCLUDE "^llhttp")
set(llhttp_ALLOWED "^net/http/parser\\.[^/]*$")
set(llhttp_WHY "only net/http/parser.* may include llhttp")
set(cuda_INCLUDE "^(cuda|cublas|curand)")
set(cuda_ALLOWED "^(serving|tests|bench)/(.*/)?cuda/")
set(cuda_WHY "only serving/**/cuda/ may include CUDA headers")

# Rank of a top-level folder in the layer map; -1 when it is not a layer.
function(rank_of folder out)
  list(FIND LAYERS "${folder}" rank)
  if(rank GREATER 5)
    set(rank 5) # examples ranks with tools
  endif()
  set(${out} ${rank} PARENT_SCOPE)
endfunction()

# One violation: print it and count it (a macro, so it sees the loop's variables).
macro(violation why)
  message("layering: ${file}:${lineno} includes ${shown}: ${why}")
  math(EXPR violations "${violations} + 1")
endmacro()

set(globs "")
foreach(dir IN LISTS LAYERS ITEMS tests bench)
  foreach(ext IN LISTS EXTENSIONS)
    list(APPEND globs "${ROOT}/${dir}/*.${ext}")
  endforeach()
endforeach()
file(GLOB_RECURSE files LIST_DIRECTORIES false RELATIVE "${ROOT}" ${globs})
list(FILTER files EXCLUDE REGEX "${SKIP}")
list(SORT files)
list(LENGTH files nfiles)
if(nfiles EQUAL 0)
  message(FATAL_ERROR "layering: no source files under ${ROOT}; is ROOT the repository root?")
endif()

set(violations 0)
foreach(file IN LISTS files)
  string(REGEX MATCH "^[^/]+" top "${file}")
  rank_of("${top}" file_rank)
  get_filename_component(dir "${file}" DIRECTORY)

  # One list element per line. ';' '[' ']' '\' would break CMake's list splitting; no
  # include path contains them, so they simply become spaces.
  file(READ "${ROOT}/${file}" text)
  foreach(c ";" "[" "]" "\\" "\r")
    string(REPLACE "${c}" " " text "${text}")
  endforeach()
  string(REPLACE "\n" ";" lines "${text}")

  set(lineno 0)
  foreach(line IN LISTS lines)
    math(EXPR lineno "${lineno} + 1")
    if(NOT line MATCHES "^[ \t]*#[ \t]*include[ \t]*([<\"])([^>\"]+)[>\"]")
      continue()
    endif()
    set(open "${CMAKE_MATCH_1}")
    set(name "${CMAKE_MATCH_2}")
    if(open STREQUAL "<")
      set(shown "<${name}>")
    else()
      set(shown "\"${name}\"")
    endif()

    # Resolve to a path relative to ROOT, and decide whether the header is one of ours.
    set(target "${name}")
    set(ours FALSE)
    set(beside FALSE)
    if(open STREQUAL "\"" AND NOT dir STREQUAL "" AND EXISTS "${ROOT}/${dir}/${name}")
      cmake_path(SET target NORMALIZE "${dir}/${name}")
      set(ours TRUE)
      set(beside TRUE)
    elseif(open STREQUAL "\"" OR EXISTS "${ROOT}/${name}")
      set(ours TRUE)
    endif()
    string(REGEX MATCH "^[^/]+" target_top "${target}")

    # 1. No include points up the layer map (layer folders only).
    if(ours AND file_rank GREATER_EQUAL 0)
      rank_of("${target_top}" target_rank)
      if(target_rank GREATER file_rank OR
         (target_rank EQUAL file_rank AND NOT target_top STREQUAL top))
        violation("${top} may not include ${target_top} (DESIGN.md, Layers)")
      endif()
    endif()

    # 2. <layer>/internal/ is private to its layer and that layer's tests and benchmarks.
    if(ours AND target MATCHES "^([^/]+)/(.*/)?internal/")
      set(owner "${CMAKE_MATCH_1}")
      set(private "${CMAKE_MATCH_0}")
      if(NOT top STREQUAL owner AND NOT file MATCHES "^(tests|bench)/${owner}/")
        violation("${private} is private to ${owner} (DESIGN.md, Layers)")
      endif()
    endif()

    # 3. Third-party headers, everywhere. A header found beside the file is ours, whatever
    #    its name (tests/serving/cuda_fake.h is not CUDA).
    if(NOT beside)
      foreach(rule IN LISTS THIRD_PARTY)
        if(name MATCHES "${${rule}_INCLUDE}" AND NOT file MATCHES "${${rule}_ALLOWED}")
          violation("${${rule}_WHY}")
        endif()
      endforeach()
    endif()
  endforeach()
endforeach()

message("layering: ${nfiles} files checked, ${violations} violations")
if(violations GREATER 0)
  message(FATAL_ERROR "layering: ${violations} #include(s) break DESIGN.md \"Layers\"; see above")
endif()
