/*
 * UNITTEST marks a function that is static in the library and visible in
 * test builds (-DELMON_UNITTEST: the fuzz targets of tests/fuzz/), as curl
 * does: a parser buried in a file reader can be driven directly without
 * widening the library's API.  Their declarations sit in the module's
 * header under #ifdef ELMON_UNITTEST.
 */
#ifndef ELMON_UNITTEST_H
#define ELMON_UNITTEST_H

#ifdef ELMON_UNITTEST
#define UNITTEST
#else
#define UNITTEST static
#endif

#endif
