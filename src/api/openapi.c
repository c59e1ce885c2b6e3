/* GET /api/v1/openapi.json: the OpenAPI 3.1 document of this API (docs/openapi.json), compiled
 * into the binary at build time (src/api/embed.cmake writes its bytes into openapi_doc.c in the
 * build directory), so the server always serves the document of its own routes and needs no
 * file at run time. tests/integ/test_openapi.py checks that it lists exactly the routes of
 * api__routes[] and that the server's answers match its schemas.
 *
 * Public: the document describes the routes, roles and shapes, no data (the same as the
 * repository's docs); what it would tell an attacker is what `/api/v1/health` and the 401/403
 * answers already do, and tools (code generators, Swagger UI) can fetch it without a token. */
#include "api/internal.h"

/* Defined in the generated openapi_doc.c (embed.cmake, NAME=api__openapi_json). */
extern const unsigned char api__openapi_json[];
extern const size_t api__openapi_json_len;

void api__openapi(rq_t *q)
{
    buf_append(&q->resp->body, api__openapi_json, api__openapi_json_len);
    q->resp->content_type = "application/json";
    q->resp->status = 200;
}
