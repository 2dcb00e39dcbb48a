# Drives the real `veil detect` binary: demo photos give faces (text, JSON, --draw), bad inputs give
# a one-line error and a non-zero exit, an image without faces is an empty result.
# Called by ctest with -DVEIL=<veil> -DMODELS=<model dir> -DWORK=<scratch dir>.
file(REMOVE_RECURSE "${WORK}")
file(MAKE_DIRECTORY "${WORK}")
set(ENV{VEIL_FACE_API_DIR} "${MODELS}")
set(demo "${MODELS}/../demo")

function(expect_ok)
  execute_process(COMMAND "${VEIL}" detect ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  if(NOT rc EQUAL 0)
    message(FATAL_ERROR "veil detect ${ARGN} failed (${rc}): ${err}")
  endif()
  set(out "${out}" PARENT_SCOPE)
endfunction()

function(expect_error code)
  execute_process(COMMAND "${VEIL}" detect ${ARGN} RESULT_VARIABLE rc OUTPUT_VARIABLE out ERROR_VARIABLE err)
  string(STRIP "${err}" err)
  string(FIND "${err}" "\n" newline)
  if(NOT rc EQUAL ${code} OR NOT newline EQUAL -1 OR NOT err MATCHES "^veil: ")
    message(FATAL_ERROR "veil detect ${ARGN}: expected exit ${code} and one line, got ${rc}: '${err}'")
  endif()
endfunction()

expect_ok("${demo}/sample1.jpg")
if(NOT out MATCHES "sample1.jpg: 1920x1280, 3 faces" OR NOT out MATCHES "landmarks68:")
  message(FATAL_ERROR "unexpected text output: ${out}")
endif()

expect_ok(--json --detector tiny "${demo}/sample5.jpg")
string(JSON n LENGTH "${out}" 0 faces)
if(NOT n EQUAL 5)
  message(FATAL_ERROR "tiny detector: expected 5 faces in sample5.jpg, got ${n}")
endif()
string(JSON n68 LENGTH "${out}" 0 faces 0 landmarks68)
if(NOT n68 EQUAL 68)
  message(FATAL_ERROR "expected 68 landmarks, got ${n68}")
endif()

expect_ok("${demo}/sample2.jpg" --draw "${WORK}/drawn.png")
if(NOT EXISTS "${WORK}/drawn.png")
  message(FATAL_ERROR "--draw wrote nothing")
endif()

# An image without faces (a flat grey ASCII PPM) is a normal, empty result.
string(REPEAT "128 128 128\n" 3072 pixels)
file(WRITE "${WORK}/grey.ppm" "P3\n64 48\n255\n${pixels}")
expect_ok(--json "${WORK}/grey.ppm")
string(JSON n LENGTH "${out}" 0 faces)
if(NOT n EQUAL 0)
  message(FATAL_ERROR "expected no faces in a grey image, got ${n}")
endif()

# Bad inputs: one line on stderr, the Status code as exit code.
file(WRITE "${WORK}/huge.ppm" "P3\n30000 30000\n255\n0 0 0\n")
expect_error(12 "${WORK}/huge.ppm")                       # ResourceExhausted, header checked first
file(WRITE "${WORK}/notes.txt" "this is not an image\n")
expect_error(2 "${WORK}/notes.txt")                       # InvalidArgument
file(WRITE "${WORK}/empty.jpg" "")
expect_error(2 "${WORK}/empty.jpg")
expect_error(2 "${WORK}")                                 # a directory
expect_error(3 "${WORK}/missing.jpg")                     # NotFound
file(WRITE "${WORK}/short.ppm" "P3\n64 48\n255\n1 2 3\n")
expect_error(2 "${WORK}/short.ppm")                       # truncated pixel data
