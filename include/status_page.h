/*
 * status_page.h: the admin API's status page (GET /), one HTML file with
 * its script and style inline, built into the binary from src/status.html.
 */
#ifndef RINGLB_STATUS_PAGE_H
#define RINGLB_STATUS_PAGE_H

#include <stddef.h>

/* The page's bytes (not NUL-terminated) and their count. */
const char *status_page(size_t *len);

#endif
