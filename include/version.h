/* version.h: the one place the version is written (make deb reads it). */
#ifndef RINGLB_VERSION_H
#define RINGLB_VERSION_H

#define RINGLB_VERSION "0.2.0"

#endif
