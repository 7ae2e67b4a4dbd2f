/*
 * tap.h — the unit-test convention: every case prints "ok NAME" or
 * "FAIL NAME: why"; tests/run.sh counts them.  A binary exits non-zero when
 * any case failed (tap_done).  Header-only.
 */
#ifndef SLIM_TAP_H
#define SLIM_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static int tap_failed_ = 0, tap_case_failed_ = 0;
static const char *tap_case_ = "";

/* Start a case; end it with TAP_END (prints ok unless a check failed). */
#define TAP_BEGIN(name) (tap_case_ = (name), tap_case_failed_ = 0)
#define TAP_END() tap_end_()

/* Fail the current case (once) with a printf message; keeps going. */
#define CHECK(cond, ...) \
    do { if (!(cond)) tap_fail_(__FILE__, __LINE__, __VA_ARGS__); } while (0)

static inline void tap_fail_(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static inline void tap_fail_(const char *file, int line, const char *fmt, ...)
{
    if (tap_case_failed_) return;
    tap_case_failed_ = 1;
    tap_failed_++;
    printf("FAIL %s: %s:%d: ", tap_case_, file, line);
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
}

static inline void tap_end_(void)
{
    if (!tap_case_failed_) printf("ok %s\n", tap_case_);
    fflush(stdout);
}

static inline int tap_done(void) { return tap_failed_ ? 1 : 0; }

#endif
