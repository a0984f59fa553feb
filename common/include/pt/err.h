/* Error codes shared by every Pantala component.
 *
 * Functions return 0 on success or a negative code: either a negated errno
 * value (-EINVAL, -ENOMEM, ...) or one of the project codes below, which sit
 * in their own range so they never collide with errno. pt_strerror() names
 * both kinds. */
#ifndef PT_ERR_H
#define PT_ERR_H

enum pt_err {
    PT_E_BASE = -4000,
    PT_E_TRUNCATED, /* input ends before a length says it should */
    PT_E_TYPE,      /* a value has the wrong msgpack/JSON type */
    PT_E_LIMIT,     /* a count or length exceeds a hard ceiling */
    PT_E_VERSION,   /* unsupported protocol version */
    PT_E_MALFORMED, /* structurally invalid (bad msgpack, trailing bytes) */
    PT_E_AUTH,      /* HMAC trailer missing or does not verify */
    PT_E_UNSIGNED,  /* frame carries no signature but one is required */
    PT_E_UNKNOWN,   /* unknown agent, symbol or key */
    PT_E_REPLAY,    /* sequence number already seen or older than the window */
    PT_E_TIME,      /* timestamp outside the accepted window */
    PT_E_IDENTITY,  /* frame identity does not match the registration */
    PT_E_CONFIG,    /* configuration error (details in the error buffer) */
    PT_E_NOSPACE,   /* output buffer too small */
    PT_E_STORE,     /* storage backend failure */
    PT_E_FULL,      /* a bounded queue is full */
    PT_E_LAST
};

/* A static, human-readable description of code (0, -errno or PT_E_*). */
const char *pt_strerror(int code);

#endif
