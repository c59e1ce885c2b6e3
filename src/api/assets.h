/* The web app's files compiled into the binary (generated table, src/api/CMakeLists.txt); an
 * internal header of src/api. */
#ifndef GS_API_ASSETS_H
#define GS_API_ASSETS_H

#include <stddef.h>

typedef struct {
    const char *name;          /* file name under web/, e.g. "app.js" */
    const unsigned char *data; /* its bytes */
    const size_t *len;         /* its length */
} api_asset_t;

extern const api_asset_t api__assets[];
extern const size_t api__nassets;

#endif
