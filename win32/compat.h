/* compat.h - included first in every compilation of the Windows build (-include, see
 * win32/local.mk): the few POSIX spellings mingw-w64 lacks, so that portable code needs no
 * #ifdef for them. Nothing here may change behaviour on other systems. */
#pragma once

#ifdef _WIN32
#include <fcntl.h>
#ifndef O_CLOEXEC
#define O_CLOEXEC _O_NOINHERIT /* the CRT's "not inherited by child processes" */
#endif
#ifndef EDQUOT
#include <errno.h>
#define EDQUOT ENOSPC /* Windows reports an exhausted quota as a full disk */
#endif
#ifndef O_NOCTTY
#define O_NOCTTY 0 /* Windows has no controlling terminals */
#endif
#endif

/* prebootd's and prebootctl's own main(), renamed by -Dmain=pb_program_main in the Windows
 * build (win32/local.mk) and called by win32/main-win32.c; declared here for
 * -Wmissing-prototypes. */
int pb_program_main(int argc, char **argv);
