/*
 * The version and the events schema, for every binary: libelmon.so writes
 * them, libelmon-exporter.so reports them, elmon reads events files no
 * newer than the schema it knows.
 */
#ifndef ELMON_VERSION_H
#define ELMON_VERSION_H

#define ELMON_VERSION "0.1.0"
#define ELMON_EVENTS_SCHEMA 2

#endif
