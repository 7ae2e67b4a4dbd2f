/*
 * tool.c — slim_tool.h: message helpers for the command-line tools.
 */
#include "slim_tool.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

static const char *tool_name = "slim";

void slim_tool_init(const char *name) { tool_name = name; }

void slim_die(int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", tool_name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(code);
}
