/* Doubles as short decimal text that reads back bit-exact, without printf:
 * the line protocol writes one per float value, and "%.17g" cost the
 * writer more than everything else it does per point. */
#ifndef COLL_STORE_DTOA_H
#define COLL_STORE_DTOA_H

#define DTOA_MAX 24 /* bytes dtoa_fmt() may write: "-1.2345678901234567e-308" */

/* Writes finite v into out (DTOA_MAX bytes, no NUL) and returns the length.
 * strtod() (any correctly rounding reader: Go's ParseFloat in InfluxDB and
 * VictoriaMetrics) turns the text back into exactly v. The digits are
 * Grisu2's: at most 17, usually the fewest that read back as v. The layout
 * is printf's %g: plain ("12.5", "0.00125", "1250") for decimal exponents
 * -5 < x < 17, else scientific ("1.25e-07", "1e+300"). -0.0 gives "-0". */
int dtoa_fmt(char *out, double v);

#endif
