/* PostgreSQL's client library, libpq, for the shared store (store: postgres). Nothing
   Swift cannot import directly: the header is all the shim is. */
#ifndef CLIBPQ_SHIM_H
#define CLIBPQ_SHIM_H
#include <libpq-fe.h>
#endif
