/* Double to shortest-ish round-trip decimal text (dtoa.h): Grisu2, after
 * Florian Loitsch, "Printing Floating-Point Numbers Quickly and Accurately
 * with Integers" (PLDI 2010). Only 64-bit integer arithmetic (and one
 * 64x64->128 multiply): the value's rounding interval is scaled by a cached
 * power of ten into a range where its digits are an integer part that fits
 * 32 bits and a fraction, and digits are generated until they fall inside
 * the interval, narrowed by one unit on each side for the error of the
 * scaling. Whatever is inside reads back as the value, so the result always
 * round-trips; it is the shortest such text in all but rare cases (then it
 * is one digit longer). */
#include "store/dtoa.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

struct fp {
    uint64_t f;
    int e; /* value = f * 2^e */
};

static struct fp fp_mul(struct fp x, struct fp y)
{
    unsigned __int128 p = (unsigned __int128)x.f * y.f;
    uint64_t h = (uint64_t)(p >> 64), l = (uint64_t)p;
    h += l >> 63; /* rounded */
    return (struct fp){h, x.e + y.e + 64};
}

static struct fp fp_normalize(struct fp x)
{
    int s = __builtin_clzll(x.f);
    return (struct fp){x.f << s, x.e - s};
}

/* 10^k for k = -348, -340, ..., 340: normalized 64-bit significand (rounded
 * to nearest) and binary exponent. Generated with exact integers:
 * f = round(10^k / 2^e) with 2^63 <= f < 2^64. */
static const struct fp cached[] = {
    {0xfa8fd5a0081c0288, -1220}, {0xbaaee17fa23ebf76, -1193}, {0x8b16fb203055ac76, -1166},
    {0xcf42894a5dce35ea, -1140}, {0x9a6bb0aa55653b2d, -1113}, {0xe61acf033d1a45df, -1087},
    {0xab70fe17c79ac6ca, -1060}, {0xff77b1fcbebcdc4f, -1034}, {0xbe5691ef416bd60c, -1007},
    {0x8dd01fad907ffc3c, -980},  {0xd3515c2831559a83, -954},  {0x9d71ac8fada6c9b5, -927},
    {0xea9c227723ee8bcb, -901},  {0xaecc49914078536d, -874},  {0x823c12795db6ce57, -847},
    {0xc21094364dfb5637, -821},  {0x9096ea6f3848984f, -794},  {0xd77485cb25823ac7, -768},
    {0xa086cfcd97bf97f4, -741},  {0xef340a98172aace5, -715},  {0xb23867fb2a35b28e, -688},
    {0x84c8d4dfd2c63f3b, -661},  {0xc5dd44271ad3cdba, -635},  {0x936b9fcebb25c996, -608},
    {0xdbac6c247d62a584, -582},  {0xa3ab66580d5fdaf6, -555},  {0xf3e2f893dec3f126, -529},
    {0xb5b5ada8aaff80b8, -502},  {0x87625f056c7c4a8b, -475},  {0xc9bcff6034c13053, -449},
    {0x964e858c91ba2655, -422},  {0xdff9772470297ebd, -396},  {0xa6dfbd9fb8e5b88f, -369},
    {0xf8a95fcf88747d94, -343},  {0xb94470938fa89bcf, -316},  {0x8a08f0f8bf0f156b, -289},
    {0xcdb02555653131b6, -263},  {0x993fe2c6d07b7fac, -236},  {0xe45c10c42a2b3b06, -210},
    {0xaa242499697392d3, -183},  {0xfd87b5f28300ca0e, -157},  {0xbce5086492111aeb, -130},
    {0x8cbccc096f5088cc, -103},  {0xd1b71758e219652c, -77},   {0x9c40000000000000, -50},
    {0xe8d4a51000000000, -24},   {0xad78ebc5ac620000, 3},     {0x813f3978f8940984, 30},
    {0xc097ce7bc90715b3, 56},    {0x8f7e32ce7bea5c70, 83},    {0xd5d238a4abe98068, 109},
    {0x9f4f2726179a2245, 136},   {0xed63a231d4c4fb27, 162},   {0xb0de65388cc8ada8, 189},
    {0x83c7088e1aab65db, 216},   {0xc45d1df942711d9a, 242},   {0x924d692ca61be758, 269},
    {0xda01ee641a708dea, 295},   {0xa26da3999aef774a, 322},   {0xf209787bb47d6b85, 348},
    {0xb454e4a179dd1877, 375},   {0x865b86925b9bc5c2, 402},   {0xc83553c5c8965d3d, 428},
    {0x952ab45cfa97a0b3, 455},   {0xde469fbd99a05fe3, 481},   {0xa59bc234db398c25, 508},
    {0xf6c69a72a3989f5c, 534},   {0xb7dcbf5354e9bece, 561},   {0x88fcf317f22241e2, 588},
    {0xcc20ce9bd35c78a5, 614},   {0x98165af37b2153df, 641},   {0xe2a0b5dc971f303a, 667},
    {0xa8d9d1535ce3b396, 694},   {0xfb9b7cd9a4a7443c, 720},   {0xbb764c4ca7a44410, 747},
    {0x8bab8eefb6409c1a, 774},   {0xd01fef10a657842c, 800},   {0x9b10a4e5e9913129, 827},
    {0xe7109bfba19c0c9d, 853},   {0xac2820d9623bf429, 880},   {0x80444b5e7aa7cf85, 907},
    {0xbf21e44003acdd2d, 933},   {0x8e679c2f5e44ff8f, 960},   {0xd433179d9c8cb841, 986},
    {0x9e19db92b4e31ba9, 1013},  {0xeb96bf6ebadf77d9, 1039},  {0xaf87023b9bf0ee6b, 1066},
};

static const uint64_t pow10u[20] = {1u,
                                    10u,
                                    100u,
                                    1000u,
                                    10000u,
                                    100000u,
                                    1000000u,
                                    10000000u,
                                    100000000u,
                                    1000000000u,
                                    10000000000u,
                                    100000000000u,
                                    1000000000000u,
                                    10000000000000u,
                                    100000000000000u,
                                    1000000000000000u,
                                    10000000000000000u,
                                    100000000000000000u,
                                    1000000000000000000u,
                                    10000000000000000000u};

/* The cached power c with c.e in a range that puts the scaled value's
 * exponent in [-60, -32] (binary exponent e of the upper boundary); *k is
 * the decimal exponent to apply to the digits: value = digits * 10^k. */
static struct fp cached_power(int e, int *k)
{
    double dk = (-61 - e) * 0.30102999566398114 + 347; /* log10(2) */
    int ki = (int)dk;
    if (dk - ki > 0.0) ki++;
    unsigned idx = (unsigned)((ki >> 3) + 1);
    *k = -(-348 + (int)idx * 8);
    return cached[idx];
}

static unsigned count_digits(uint32_t n)
{
    unsigned d = 1;
    while (d < 10 && n >= pow10u[d]) d++;
    return d;
}

/* Walks the last digit down towards the value while that stays inside the
 * interval and gets closer (Grisu's "round weed", the simple form). */
static void round_weed(char *buf, int len, uint64_t delta, uint64_t rest, uint64_t ten_kappa,
                       uint64_t wp_w)
{
    while (rest < wp_w && delta - rest >= ten_kappa &&
           (rest + ten_kappa < wp_w || wp_w - rest > rest + ten_kappa - wp_w)) {
        buf[len - 1]--;
        rest += ten_kappa;
    }
}

/* The digits of w inside (mp - delta, mp]: into buf, their count in *len,
 * and *k adjusted so that value = digits * 10^k. */
static void digit_gen(struct fp w, struct fp mp, uint64_t delta, char *buf, int *len, int *k)
{
    const struct fp one = {(uint64_t)1 << -mp.e, mp.e};
    const uint64_t wp_w = mp.f - w.f;
    uint32_t p1 = (uint32_t)(mp.f >> -one.e);
    uint64_t p2 = mp.f & (one.f - 1);
    int kappa = (int)count_digits(p1);
    *len = 0;
    while (kappa > 0) {
        uint32_t d = (uint32_t)(p1 / pow10u[kappa - 1]);
        p1 = (uint32_t)(p1 % pow10u[kappa - 1]);
        if (d || *len) buf[(*len)++] = (char)('0' + d);
        kappa--;
        uint64_t rest = ((uint64_t)p1 << -one.e) + p2;
        if (rest <= delta) {
            *k += kappa;
            round_weed(buf, *len, delta, rest, pow10u[kappa] << -one.e, wp_w);
            return;
        }
    }
    for (;;) { /* kappa <= 0: the fraction */
        p2 *= 10;
        delta *= 10;
        char d = (char)(p2 >> -one.e);
        if (d || *len) buf[(*len)++] = (char)('0' + d);
        p2 &= one.f - 1;
        kappa--;
        if (p2 < delta) {
            *k += kappa;
            int i = -kappa;
            round_weed(buf, *len, delta, p2, one.f, i < 20 ? wp_w * pow10u[i] : 0);
            return;
        }
    }
}

/* Digits of v > 0 (finite) into buf (at most 17), value = digits * 10^k. */
static int grisu2(double v, char *buf, int *k)
{
    uint64_t bits;
    memcpy(&bits, &v, sizeof bits);
    const uint64_t hidden = (uint64_t)1 << 52, mask = hidden - 1;
    int be = (int)((bits >> 52) & 0x7ff);
    struct fp x =
        be ? (struct fp){(bits & mask) + hidden, be - 1075} : (struct fp){bits & mask, -1074};
    /* The rounding interval's boundaries: halfway to the neighbours (the
     * lower one is closer when v is a power of two, but not subnormal). */
    struct fp plus = fp_normalize((struct fp){(x.f << 1) + 1, x.e - 1});
    struct fp minus = (x.f == hidden && be > 1) ? (struct fp){(x.f << 2) - 1, x.e - 2}
                                                : (struct fp){(x.f << 1) - 1, x.e - 1};
    minus.f <<= minus.e - plus.e;
    minus.e = plus.e;
    struct fp c = cached_power(plus.e, k);
    struct fp w = fp_mul(fp_normalize(x), c);
    struct fp wp = fp_mul(plus, c), wm = fp_mul(minus, c);
    wm.f++; /* the scaling's error: stay strictly inside */
    wp.f--;
    int len;
    digit_gen(w, wp, wp.f - wm.f, buf, &len, k);
    return len;
}

static int put_exp(char *o, int x)
{
    int n = 0;
    o[n++] = 'e';
    o[n++] = x < 0 ? '-' : '+';
    if (x < 0) x = -x;
    if (x >= 100) {
        o[n++] = (char)('0' + x / 100);
        x %= 100;
        o[n++] = (char)('0' + x / 10);
    } else {
        o[n++] = (char)('0' + x / 10); /* two digits at least, as printf */
    }
    o[n++] = (char)('0' + x % 10);
    return n;
}

int dtoa_fmt(char *out, double v)
{
    int o = 0;
    if (signbit(v)) {
        out[o++] = '-';
        v = -v;
    }
    if (v == 0) {
        out[o++] = '0';
        return o;
    }
    char d[20];
    int k, n = grisu2(v, d, &k);
    int x = n + k - 1;       /* decimal exponent of the first digit */
    if (x < -4 || x >= 17) { /* d.ddde+xx */
        out[o++] = d[0];
        if (n > 1) {
            out[o++] = '.';
            memcpy(out + o, d + 1, (size_t)(n - 1));
            o += n - 1;
        }
        return o + put_exp(out + o, x);
    }
    if (k >= 0) { /* ddd000 */
        memcpy(out + o, d, (size_t)n);
        o += n;
        memset(out + o, '0', (size_t)k);
        return o + k;
    }
    if (x >= 0) { /* dd.ddd */
        memcpy(out + o, d, (size_t)(x + 1));
        o += x + 1;
        out[o++] = '.';
        memcpy(out + o, d + x + 1, (size_t)(n - x - 1));
        return o + n - x - 1;
    }
    out[o++] = '0'; /* 0.000ddd */
    out[o++] = '.';
    memset(out + o, '0', (size_t)(-x - 1));
    o += -x - 1;
    memcpy(out + o, d, (size_t)n);
    return o + n;
}
