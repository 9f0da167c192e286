# Included by the CUDA directories (kernels/, tests/gpu/): the project-wide C options
# (-Wall ... -Werror) are gcc spellings that nvcc misreads (its -Werror takes a value), so
# they are kept for the other languages only, and CUDA gets its own: host-side warnings
# through -Xcompiler, device-side warnings as errors when KCCL_WERROR is on.
get_directory_property(kccl_dir_opts COMPILE_OPTIONS)
set(kccl_new_opts)
foreach(o IN LISTS kccl_dir_opts)
  list(APPEND kccl_new_opts "$<$<NOT:$<COMPILE_LANGUAGE:CUDA>>:${o}>")
endforeach()
set_directory_properties(PROPERTIES COMPILE_OPTIONS "${kccl_new_opts}")
add_compile_options("$<$<COMPILE_LANGUAGE:CUDA>:-Xcompiler=-Wall,-Wextra,-Wno-unused-parameter>")
if(KCCL_WERROR)
  add_compile_options("$<$<COMPILE_LANGUAGE:CUDA>:-Werror=all-warnings>")
endif()
