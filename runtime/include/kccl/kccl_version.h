/* kccl_version.h - library version, checked at run time with kccl_version(). */
#ifndef KCCL_VERSION_H
#define KCCL_VERSION_H

#define KCCL_VERSION_MAJOR 0
#define KCCL_VERSION_MINOR 1
#define KCCL_VERSION_PATCH 0
#define KCCL_VERSION_CODE                                                                          \
    (KCCL_VERSION_MAJOR * 10000 + KCCL_VERSION_MINOR * 100 + KCCL_VERSION_PATCH)

#ifdef __cplusplus
extern "C" {
#endif
/* The version the library was built as, in KCCL_VERSION_CODE form. */
int kccl_version(void);
#ifdef __cplusplus
}
#endif
#endif
