// Package wal is abmeshd's write-ahead log of accepted OTLP Export
// requests: each request's wire bytes are appended as one record with a
// sequence number, and the request is acknowledged only once a group
// commit (one fsync covering every record appended meanwhile) has made it
// durable. On start the records not yet reflected in the store are
// replayed through the receiver's ordinary decode path.
//
// On disk the log is a directory of segment files, each named by a
// sequence number ("%020d.wal") above every record of the segments before
// it and above every older segment's name (a segment may hold records
// appended just before it started, below its name). A segment is a run of
// records framed as
//
//	length  uint32  (big-endian; bytes after the 8-byte header: seq, type, payload)
//	crc     uint32  (CRC-32C of seq, type and payload)
//	seq     uint64
//	type    byte    (1: data, the request's bytes; 2: abort of record seq)
//	payload []byte
//
// A torn tail (short record or bad CRC, from a crash during a write) ends
// its segment: what follows it is ignored on replay. Whole segments are
// deleted once every record in them is below the low-water mark the
// caller stored with its cells (Truncate).
package wal
