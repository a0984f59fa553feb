/* A minimal, bounded XML element finder for the AWS Query protocol's
 * responses (flat, namespace-free element trees, no DTD). Not a general XML
 * parser: it finds elements by name within a range and decodes the five
 * predefined entities of a text value. Every scan stays inside [p, end). */
#ifndef DRV_XML_H
#define DRV_XML_H

#include <stdbool.h>
#include <stddef.h>

struct drv_xml {
    const char *p, *end; /* the inner content of an element (or a whole document) */
};

/* First element named tag inside in, starting at *from (NULL: in.p); its
 * inner content in *out, and *from advanced past it. Nested elements of the
 * same name are matched properly. true when found. */
bool drv_xml_next(struct drv_xml in, const char *tag, const char **from, struct drv_xml *out);
/* Shorthand: the first element named tag. */
bool drv_xml_child(struct drv_xml in, const char *tag, struct drv_xml *out);
/* The text of the first element tag, entities decoded, into buf ("" and
 * false when absent; truncated to buflen-1). */
bool drv_xml_text(struct drv_xml in, const char *tag, char *buf, size_t buflen);
/* Decodes el's content as text. */
void drv_xml_value(struct drv_xml el, char *buf, size_t buflen);

#endif
