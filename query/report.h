/*
 * report.h — private to query/: the convenience reports of slim-query
 * (`show D SEQ`, `stats D`), built on the virtual tables.  Both return 0 or
 * -1 with *err set to a message for the tool to print (sqlite3_free it).
 */
#ifndef SLIM_QUERY_REPORT_H
#define SLIM_QUERY_REPORT_H

#include "output.h"

int qreport_show(sqlite3 *db, qout *o, const char *dataset, int64_t seq,
                 char **err);
int qreport_stats(sqlite3 *db, qout *o, const char *dataset, char **err);

#endif
