/*
 * ext_slim.c — slim's virtual tables and SQL functions as a loadable SQLite
 * extension (build/slimext.so):
 *
 *   $ sqlite3 slim.store/meta.sqlite
 *   sqlite> .load build/slimext
 *   sqlite> SELECT * FROM positions WHERE dataset = 'web' AND seq = 0 LIMIT 5;
 *
 * The store is the directory holding the database file.  This is the only
 * file that includes <sqlite3ext.h>: the shared code in query/ and store/
 * calls libsqlite3 directly (the extension links it), which is the same
 * library only when the host uses the shared libsqlite3 too -- the stock
 * sqlite3 shell does.  A host with its own copy of SQLite (statically linked)
 * would hand us handles of another library, so we check and refuse.
 */
#include <sqlite3ext.h>
SQLITE_EXTENSION_INIT1

#include <stdlib.h>
#include <string.h>

#include "query.h"

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_slimext_init(sqlite3 *db, char **err, const sqlite3_api_routines *api);

int sqlite3_slimext_init(sqlite3 *db, char **err, const sqlite3_api_routines *api)
{
    SQLITE_EXTENSION_INIT2(api);
    if ((void *)api->create_module_v2 != slimq_linked_sqlite_fn()) {
        *err = sqlite3_mprintf("slimext: the host's SQLite is not the shared "
                               "libsqlite3 this extension uses; load it from "
                               "a program linked with libsqlite3.so");
        return SQLITE_ERROR;
    }
    const char *file = sqlite3_db_filename(db, "main");
    if (!file || !*file) {
        *err = sqlite3_mprintf("slimext: the main database has no file; open "
                               "a store's meta.sqlite first");
        return SQLITE_ERROR;
    }
    char *dir = sqlite3_mprintf("%s", file);
    if (!dir) return SQLITE_NOMEM;
    char *slash = strrchr(dir, '/');
    if (slash == dir) slash[1] = 0;
    else if (slash) *slash = 0;
    else strcpy(dir, ".");
    slim_store *st = NULL;
    int rc = slim_store_open(&st, dir, SLIM_OPEN_RDONLY);
    if (rc) {
        *err = sqlite3_mprintf("slimext: cannot open store '%s': %s", dir,
                               st ? slim_errmsg(st) : slim_strerror(rc));
        slim_store_close(st);
        sqlite3_free(dir);
        return SQLITE_ERROR;
    }
    sqlite3_free(dir);
    /* The shell's connection is long-lived: each new scan reads the latest
     * commit.  The store closes with the connection. */
    return slimq_register(db, st, SLIMQ_OWN_STORE | SLIMQ_REFRESH, NULL, err);
}
