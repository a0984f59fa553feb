/* pt_strerror(): names for errno values and Pantala's own error codes. */
#include "pt/err.h"

#include <string.h>

static const char *const pt_err_names[] = {
    [PT_E_TRUNCATED - PT_E_BASE] = "input truncated",
    [PT_E_TYPE - PT_E_BASE] = "unexpected value type",
    [PT_E_LIMIT - PT_E_BASE] = "hard limit exceeded",
    [PT_E_VERSION - PT_E_BASE] = "unsupported protocol version",
    [PT_E_MALFORMED - PT_E_BASE] = "malformed input",
    [PT_E_AUTH - PT_E_BASE] = "authentication failed",
    [PT_E_UNSIGNED - PT_E_BASE] = "unsigned frame",
    [PT_E_UNKNOWN - PT_E_BASE] = "unknown identifier",
    [PT_E_REPLAY - PT_E_BASE] = "replayed or stale sequence number",
    [PT_E_TIME - PT_E_BASE] = "timestamp outside window",
    [PT_E_IDENTITY - PT_E_BASE] = "identity mismatch",
    [PT_E_CONFIG - PT_E_BASE] = "configuration error",
    [PT_E_NOSPACE - PT_E_BASE] = "buffer too small",
    [PT_E_STORE - PT_E_BASE] = "storage failure",
    [PT_E_FULL - PT_E_BASE] = "queue full",
};

const char *pt_strerror(int code)
{
    if (code == 0) return "success";
    if (code > PT_E_BASE && code < PT_E_LAST) return pt_err_names[code - PT_E_BASE];
    if (code < 0 && code > -4000) return strerror(-code);
    return "unknown error";
}
