/*
 * slim_tool.h — support shared by the slim-* command-line tools.  Not part of
 * the library's contract in slim.h: the library itself never prints or
 * exits; these functions do, and only the tools' main files call them.
 */
#ifndef SLIM_TOOL_H
#define SLIM_TOOL_H

/* Name the running tool for messages ("slim-ingest"); call first in main. */
void slim_tool_init(const char *name);

/* git-style fatal error: "<tool>: <message>" on stderr, then exit(code)
 * (1 = runtime error, 2 = usage error). */
void slim_die(int code, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

#endif
