/* collector/agentless/cred.c: the key file and AES-256-GCM sealing. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "agentless/cred.h"

static char dir[64];

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/pt-aglcred-XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_of(char *out, size_t n, const char *name)
{
    snprintf(out, n, "%s/%s", dir, name);
}

static void test_key_created_private_and_stable(void **state)
{
    (void)state;
    char p[128], err[512];
    path_of(p, sizeof p, "k1");
    struct agl_key a, b;
    assert_int_equal(agl_key_load(&a, p, err, sizeof err), 0);
    struct stat st;
    assert_int_equal(stat(p, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    assert_int_equal(st.st_size, AGL_KEY_LEN);
    assert_int_equal(agl_key_load(&b, p, err, sizeof err), 0); /* loaded, not re-created */
    assert_memory_equal(a.k, b.k, AGL_KEY_LEN);
    assert_string_equal(a.id_hex, b.id_hex);
    agl_key_close(&a);
    agl_key_close(&b);
}

static void test_key_refused_when_readable_or_wrong_size(void **state)
{
    (void)state;
    char p[128], err[512];
    path_of(p, sizeof p, "k2");
    struct agl_key k;
    assert_int_equal(agl_key_load(&k, p, err, sizeof err), 0);
    agl_key_close(&k);
    assert_int_equal(chmod(p, 0644), 0);
    assert_int_equal(agl_key_load(&k, p, err, sizeof err), AGL_E_KEYPERM);
    assert_non_null(strstr(err, "chmod 600"));
    assert_non_null(strstr(err, p));
    path_of(p, sizeof p, "k3");
    int fd = open(p, O_WRONLY | O_CREAT, 0600);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, "short", 5), 5);
    close(fd);
    assert_int_equal(agl_key_load(&k, p, err, sizeof err), AGL_E_KEYSIZE);
    assert_non_null(strstr(err, "holds 5 bytes"));
}

static void test_round_trip(void **state)
{
    (void)state;
    char p[128], err[512];
    path_of(p, sizeof p, "k4");
    struct agl_key k;
    assert_int_equal(agl_key_load(&k, p, err, sizeof err), 0);
    const char *secret = "{\"secret_access_key\":\"wJalrXUtnFEMI/K7MDENG\"}";
    uint8_t *blob;
    size_t n;
    assert_int_equal(agl_cred_seal(&k, "target:7", secret, strlen(secret), &blob, &n), 0);
    assert_int_equal(n, strlen(secret) + AGL_SEAL_OVER);
    assert_null(memmem(blob, n, "wJalrXUtnFEMI", 13)); /* not in clear */
    char *out;
    size_t outlen;
    assert_int_equal(agl_cred_open(&k, "target:7", blob, n, &out, &outlen), 0);
    assert_int_equal(outlen, strlen(secret));
    assert_string_equal(out, secret);
    free(out);
    /* Two seals of the same text differ (fresh nonce). */
    uint8_t *blob2;
    size_t n2;
    assert_int_equal(agl_cred_seal(&k, "target:7", secret, strlen(secret), &blob2, &n2), 0);
    assert_memory_not_equal(blob, blob2, n);
    free(blob);
    free(blob2);
    agl_key_close(&k);
}

static void test_tampered_rejected(void **state)
{
    (void)state;
    char p[128], err[512];
    path_of(p, sizeof p, "k5");
    struct agl_key k;
    assert_int_equal(agl_key_load(&k, p, err, sizeof err), 0);
    const char *secret = "{\"password\":\"hunter2\"}";
    uint8_t *blob;
    size_t n;
    char *out;
    size_t outlen;
    assert_int_equal(agl_cred_seal(&k, "target:1", secret, strlen(secret), &blob, &n), 0);
    /* Every byte after the magic and key id matters: nonce, text, tag. */
    for (size_t i = 4 + AGL_KEYID_LEN; i < n; i++) {
        blob[i] ^= 0x01;
        assert_int_equal(agl_cred_open(&k, "target:1", blob, n, &out, &outlen), AGL_E_TAMPERED);
        assert_null(out);
        blob[i] ^= 0x01;
    }
    /* Truncated, or moved to another target's row. */
    assert_int_equal(agl_cred_open(&k, "target:1", blob, n - 1, &out, &outlen), AGL_E_TAMPERED);
    assert_int_equal(agl_cred_open(&k, "target:2", blob, n, &out, &outlen), AGL_E_TAMPERED);
    assert_int_equal(agl_cred_open(&k, "target:1", blob, 10, &out, &outlen), AGL_E_FORMAT);
    blob[0] = 'X';
    assert_int_equal(agl_cred_open(&k, "target:1", blob, n, &out, &outlen), AGL_E_FORMAT);
    free(blob);
    agl_key_close(&k);
}

static void test_wrong_key_file_named(void **state)
{
    (void)state;
    char p1[128], p2[128], err[512];
    path_of(p1, sizeof p1, "k6");
    path_of(p2, sizeof p2, "k7");
    struct agl_key k1, k2;
    assert_int_equal(agl_key_load(&k1, p1, err, sizeof err), 0);
    assert_int_equal(agl_key_load(&k2, p2, err, sizeof err), 0);
    uint8_t *blob;
    size_t n;
    char *out;
    size_t outlen;
    assert_int_equal(agl_cred_seal(&k1, "target:1", "{}", 2, &blob, &n), 0);
    assert_int_equal(agl_cred_open(&k2, "target:1", blob, n, &out, &outlen), AGL_E_WRONGKEY);
    assert_non_null(strstr(agl_cred_strerror(AGL_E_WRONGKEY), "another key file"));
    /* Same id bytes but another key (a forged header): still refused. */
    memcpy(blob + 4, k2.id, AGL_KEYID_LEN);
    assert_int_equal(agl_cred_open(&k2, "target:1", blob, n, &out, &outlen), AGL_E_TAMPERED);
    free(blob);
    agl_key_close(&k1);
    agl_key_close(&k2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_key_created_private_and_stable),
        cmocka_unit_test(test_key_refused_when_readable_or_wrong_size),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_tampered_rejected),
        cmocka_unit_test(test_wrong_key_file_named),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
