/*
 * fault_fd.h — shared by the LD_PRELOAD fault shims: whether a descriptor
 * is open on a file whose path ends in /name.
 */
#ifndef SLIM_FAULT_FD_H
#define SLIM_FAULT_FD_H
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int fault_fd_is(int fd, const char *name)
{
    if (!name || !*name) return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    size_t ln = strlen(name), lp = (size_t)n;
    return lp > ln && path[lp - ln - 1] == '/' && !strcmp(path + lp - ln, name);
}

#endif
