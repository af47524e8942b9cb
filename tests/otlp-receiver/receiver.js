#!/usr/bin/env node
// A local OTLP receiver for libelmon's tests.  It decodes every request with
// the OFFICIAL OpenTelemetry .proto definitions (shipped in
// @opentelemetry/otlp-grpc-exporter-base's build/protos), never with
// libelmon's own, serves OTLP/HTTP (http/protobuf, gzip) and OTLP/gRPC
// (@grpc/grpc-js, gzip) on loopback ephemeral ports, can inject faults, and
// dumps what it received as JSON Lines the C suites read with json_get():
//   {"rec":"request", ...}            one per request, resource attributes as "res.<key>"
//   {"rec":"point", ...}              one per metric data point, attributes as "attr.<key>"
//   {"rec":"log", ...}                one per log record, attributes as "attr.<key>"
//
//   {"rec":"response", ...}           slow mode: one per answer, "finished" false when
//                                     the client hung up before the last byte
//   {"rec":"tls_error", ...}          a TLS handshake the server refused (--tls with CA)
//
// usage: node receiver.js --dump FILE --ports FILE [--mode MODE] [--fail-first N]
//                         [--tls CERT,KEY[,CA]]
// MODE: ok (default) | blackhole (accept, never answer) | garbage (200 and
// 4 MiB of random bytes) | partial (200 with partial_success) |
// http:STATUS[:RETRY_AFTER] | grpc:CODE |
// slow:MS (a successful answer that takes MS ms: over HTTP the status and
// headers go at once and a padded response body (an unknown field the
// client skips) trickles out in 10 pieces, the last at MS, so the client's
// whole transfer is slow, not just its first byte; over gRPC the response
// headers go at once and the message and status at MS)
// --fail-first N: the fault applies to the first N requests only.
// --tls CERT,KEY: serve both ports over TLS.  With ,CA the servers also
// demand a client certificate signed by CA (https: requestCert and
// rejectUnauthorized; gRPC: checkClientCertificate) and every request
// record carries "client_cert": the subject CN the client presented.
'use strict';
const fs = require('fs');
const path = require('path');
const http = require('http');
const https = require('https');
const zlib = require('zlib');
const crypto = require('crypto');
const protobuf = require('protobufjs');
// grpc-js hides grpc-encoding and te from handlers: note every HTTP/2
// stream's headers as it arrives (before grpc-js is loaded, so its servers
// are made by the wrapped functions) and pair them with the call by path.
const http2 = require('http2');
const streamHeaders = {};
for (const fn of ['createServer', 'createSecureServer']) {
  const orig = http2[fn];
  http2[fn] = function (...a) {
    const s = orig.apply(this, a);
    s.prependListener('stream', (stream, h) => {
      (streamHeaders[h[':path']] = streamHeaders[h[':path']] || []).push(
        { enc: h['grpc-encoding'] || 'identity', te: h['te'] || null, ct: h['content-type'] || null,
          timeout: h['grpc-timeout'] || null, cn: peerCN(stream.session && stream.session.socket) });
    });
    s.on('tlsClientError', tlsError('grpc'));
    return s;
  };
}
const grpc = require('@grpc/grpc-js');

// The subject CN of the client certificate on a TLS socket, or null
// (plain socket, or no certificate presented).
function peerCN(sock) {
  if (!sock || !sock.encrypted || typeof sock.getPeerCertificate !== 'function') return null;
  const c = sock.getPeerCertificate();
  return c && c.subject && c.subject.CN ? c.subject.CN : null;
}
function tlsError(protocol) {
  return (e) => out({ rec: 'tls_error', protocol, error: String(e && (e.code || e.message) || e), t_ms: Date.now() });
}

const args = {};
for (let i = 2; i < process.argv.length; i += 2) args[process.argv[i].replace(/^--/, '')] = process.argv[i + 1];
const mode = args.mode || 'ok';
let failFirst = args['fail-first'] !== undefined ? Number(args['fail-first']) : Infinity;
const dump = args.dump;
fs.writeFileSync(dump, '');

const protoDir = path.join(path.dirname(require.resolve('@opentelemetry/otlp-grpc-exporter-base/package.json')),
                           'build', 'protos');
const root = new protobuf.Root();
root.resolvePath = (origin, target) => path.join(protoDir, target);
root.loadSync([
  'opentelemetry/proto/collector/metrics/v1/metrics_service.proto',
  'opentelemetry/proto/collector/logs/v1/logs_service.proto',
], { keepCase: true });
const types = {
  metrics: root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceRequest'),
  logs: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceRequest'),
};
const responses = {
  metrics: root.lookupType('opentelemetry.proto.collector.metrics.v1.ExportMetricsServiceResponse'),
  logs: root.lookupType('opentelemetry.proto.collector.logs.v1.ExportLogsServiceResponse'),
};

let nreq = 0;
function out(rec) { fs.appendFileSync(dump, JSON.stringify(rec) + '\n'); }

function anyValue(v) {
  if (!v) return null;
  if (v.string_value !== undefined) return v.string_value;
  if (v.int_value !== undefined) return Number(v.int_value);
  if (v.double_value !== undefined) return v.double_value;
  if (v.bool_value !== undefined) return v.bool_value;
  if (v.array_value) return (v.array_value.values || []).map(anyValue);
  if (v.kvlist_value) return Object.fromEntries((v.kvlist_value.values || []).map(kv => [kv.key, anyValue(kv.value)]));
  return null;
}
function flatAttrs(prefix, attrs, into) {
  for (const kv of attrs || []) {
    const v = anyValue(kv.value);
    into[prefix + kv.key] = Array.isArray(v) ? JSON.stringify(v) : v;
    into[prefix + kv.key + '.type'] = Object.keys(kv.value || {}).find(k => k.endsWith('_value')) || 'none';
  }
}

// The decoded request as flat records: every field the exporter sends.
function record(signal, protocol, encoding, buf, meta) {
  const msg = types[signal].decode(buf);
  const obj = types[signal].toObject(msg, { longs: String, enums: String, bytes: String, defaults: false });
  const req = { rec: 'request', n: ++nreq, signal, protocol, encoding, t_ms: Date.now(), bytes: buf.length, ...meta };
  const rl = signal === 'metrics' ? obj.resource_metrics || [] : obj.resource_logs || [];
  req.resources = rl.length;
  if (rl[0]) {
    flatAttrs('res.', rl[0].resource && rl[0].resource.attributes, req);
    const scopes = signal === 'metrics' ? rl[0].scope_metrics || [] : rl[0].scope_logs || [];
    req.scopes = scopes.length;
    if (scopes[0] && scopes[0].scope) { req['scope.name'] = scopes[0].scope.name; req['scope.version'] = scopes[0].scope.version; }
  }
  out(req);
  for (const r of rl) {
    if (signal === 'metrics') {
      for (const sm of r.scope_metrics || []) for (const m of sm.metrics || []) {
        const kind = ['gauge', 'sum', 'histogram', 'exponential_histogram', 'summary'].find(k => m[k]);
        const d = m[kind];
        for (const p of d.data_points || []) {
          const pt = { rec: 'point', n: req.n, signal, metric: m.name, unit: m.unit, description: m.description,
                       kind, temporality: d.aggregation_temporality || null,
                       monotonic: d.is_monotonic === undefined ? null : d.is_monotonic,
                       start: p.start_time_unix_nano || null, time: p.time_unix_nano || null };
          flatAttrs('attr.', p.attributes, pt);
          if (kind === 'gauge' || kind === 'sum') {
            pt.value = p.as_double !== undefined ? p.as_double : Number(p.as_int);
            pt.value_type = p.as_double !== undefined ? 'double' : 'int';
          } else {
            pt.count = Number(p.count); pt.sum = p.sum; pt.max = p.max === undefined ? null : p.max;
            if (kind === 'histogram') {
              pt.bounds = JSON.stringify(p.explicit_bounds || []);
              pt.buckets = JSON.stringify((p.bucket_counts || []).map(Number));
              pt.bucket_total = (p.bucket_counts || []).reduce((a, b) => a + Number(b), 0);
            } else {
              pt.scale = p.scale || 0; pt.zero_count = Number(p.zero_count || 0);
              pt.offset = (p.positive && p.positive.offset) || 0;
              pt.nbuckets = ((p.positive && p.positive.bucket_counts) || []).length;
              pt.bucket_total = ((p.positive && p.positive.bucket_counts) || []).reduce((a, b) => a + Number(b), 0) + pt.zero_count;
            }
          }
          out(pt);
        }
      }
    } else {
      for (const sl of r.scope_logs || []) for (const l of sl.log_records || []) {
        const lr = { rec: 'log', n: req.n, time: l.time_unix_nano || null, observed: l.observed_time_unix_nano || null,
                     severity_number: l.severity_number || null, severity_text: l.severity_text || null,
                     body: anyValue(l.body) };
        flatAttrs('attr.', l.attributes, lr);
        out(lr);
      }
    }
  }
}

// slow:MS over HTTP: 200 and the headers now, then a response message
// padded with an unknown bytes field (number 15, skipped by any protobuf
// parser) written in 10 pieces, the last MS ms from now.  The padding is
// one length-delimited field, so the pieces are its tag and length first
// and then slices of its content.
function slowAnswer(res, signal, n, ms) {
  const t0 = Date.now();
  const pad = Buffer.alloc(1000, 0x61);
  const head = Buffer.from(protobuf.Writer.create().uint32((15 << 3) | 2).uint32(pad.length).finish());
  const pieces = [Buffer.concat([Buffer.from(responses[signal].encode({}).finish()), head])];
  for (let i = 0; i < 10; i++) pieces.push(pad.subarray(i * 100, (i + 1) * 100));
  let finished = false;
  res.on('finish', () => { finished = true; });
  res.on('close', () => out({ rec: 'response', n, signal, mode: mode, finished, ms: Date.now() - t0, t_ms: Date.now() }));
  res.writeHead(200, { 'content-type': 'application/x-protobuf' });
  res.write(pieces[0]);
  for (let i = 1; i <= 10; i++) {
    setTimeout(() => {
      if (res.destroyed) return;
      if (i < 10) res.write(pieces[i]);
      else res.end(pieces[i]);
    }, (ms * i) / 10);
  }
}

function faultNow() {
  if (mode === 'ok' || failFirst <= 0) return 'ok';
  failFirst--;
  return mode;
}

// partial_success is newer than these official protos: encode it by hand
// (field 1: {1: rejected count, 2: message}).
function partialBody() {
  const inner = protobuf.Writer.create().uint32(8).int64(3).uint32(18).string('3 points rejected by test').finish();
  return Buffer.from(protobuf.Writer.create().uint32(10).bytes(inner).finish());
}

const held = [];   // blackholed requests, never answered
function handleHttp(req, res) {
  const chunks = [];
  req.on('data', c => chunks.push(c));
  req.on('end', () => {
    const signal = req.url === '/v1/metrics' ? 'metrics' : req.url === '/v1/logs' ? 'logs' : null;
    const enc = req.headers['content-encoding'] || 'identity';
    let body = Buffer.concat(chunks);
    const meta = { path: req.url, content_type: req.headers['content-type'] || null,
                   user_agent: req.headers['user-agent'] || null,
                   'h.authorization': req.headers['authorization'] || null,
                   'h.x-test': req.headers['x-test'] || null, tls: !!req.socket.encrypted,
                   client_cert: peerCN(req.socket) };
    const fault = faultNow();
    if (!signal) { out({ rec: 'error', path: req.url, t_ms: Date.now() }); res.writeHead(404); return res.end(); }
    try {
      if (enc === 'gzip') body = zlib.gunzipSync(body);
      record(signal, 'http', enc, body, { ...meta, fault });
    } catch (e) {
      out({ rec: 'error', signal, error: String(e), t_ms: Date.now(), fault });
      if (fault === 'ok') { res.writeHead(400); return res.end(); }
    }
    if (fault === 'blackhole') { held.push(res); return; }
    if (fault.startsWith('slow:')) return slowAnswer(res, signal, nreq, Number(fault.split(':')[1]));
    if (fault === 'garbage') {
      res.writeHead(200, { 'content-type': 'application/x-protobuf' });
      return res.end(crypto.randomBytes(4 * 1024 * 1024));
    }
    if (fault.startsWith('http:')) {
      const [, status, ra] = fault.split(':');
      const h = { 'content-type': 'text/plain' };
      if (ra !== undefined) h['retry-after'] = ra;
      res.writeHead(Number(status), h);
      return res.end('injected fault ' + status);
    }
    res.writeHead(200, { 'content-type': 'application/x-protobuf' });
    res.end(fault === 'partial' ? partialBody() : Buffer.from(responses[signal].encode({}).finish()));
  });
}

function grpcService(signal) {
  const svc = signal === 'metrics' ? 'opentelemetry.proto.collector.metrics.v1.MetricsService'
                                   : 'opentelemetry.proto.collector.logs.v1.LogsService';
  return {
    Export: {
      path: '/' + svc + '/Export', requestStream: false, responseStream: false,
      requestSerialize: b => b, requestDeserialize: b => b,
      responseSerialize: b => b, responseDeserialize: b => b,
    },
  };
}
function grpcHandler(signal) {
  return (call, cb) => {
    const md = call.metadata.getMap();
    const sh = (streamHeaders[call.getPath()] || []).shift() || {};
    const fault = faultNow();
    try {
      record(signal, 'grpc', sh.enc || 'unknown', call.request,
             { path: call.getPath(), content_type: sh.ct, te: sh.te, grpc_timeout: sh.timeout,
               client_cert: sh.cn || null,
               user_agent: md['user-agent'] || null,
               'h.authorization': md['authorization'] || null, 'h.x-test': md['x-test'] || null, fault });
    } catch (e) {
      out({ rec: 'error', signal, error: String(e), t_ms: Date.now(), fault });
    }
    if (fault === 'blackhole') { held.push(cb); return; }
    if (fault.startsWith('slow:')) {
      const n = nreq, t0 = Date.now();
      call.sendMetadata(new grpc.Metadata());
      let done = false;
      call.on('cancelled', () => {
        if (!done) out({ rec: 'response', n, signal, mode, finished: false, ms: Date.now() - t0, t_ms: Date.now() });
        done = true;
      });
      setTimeout(() => {
        if (done) return;
        done = true;
        cb(null, Buffer.from(responses[signal].encode({}).finish()));
        out({ rec: 'response', n, signal, mode, finished: true, ms: Date.now() - t0, t_ms: Date.now() });
      }, Number(fault.split(':')[1]));
      return;
    }
    if (fault.startsWith('grpc:')) return cb({ code: Number(fault.split(':')[1]), details: 'injected fault' });
    if (fault === 'partial') return cb(null, partialBody());
    cb(null, Buffer.from(responses[signal].encode({}).finish()));
  };
}

async function main() {
  let tls = null;
  if (args.tls) {
    const [cert, key, ca] = args.tls.split(',');
    tls = { cert: fs.readFileSync(cert), key: fs.readFileSync(key) };
    if (ca) Object.assign(tls, { ca: fs.readFileSync(ca), requestCert: true, rejectUnauthorized: true });
  }
  const server = tls ? https.createServer(tls, handleHttp) : http.createServer(handleHttp);
  if (tls) server.on('tlsClientError', tlsError('http'));
  await new Promise(r => server.listen(0, '127.0.0.1', r));
  const g = new grpc.Server({ 'grpc.max_receive_message_length': 64 * 1024 * 1024 });
  g.addService(grpcService('metrics'), { Export: grpcHandler('metrics') });
  g.addService(grpcService('logs'), { Export: grpcHandler('logs') });
  const creds = tls ? grpc.ServerCredentials.createSsl(tls.ca || null, [{ private_key: tls.key, cert_chain: tls.cert }],
                                                      !!tls.ca)
                    : grpc.ServerCredentials.createInsecure();
  const gport = await new Promise((res, rej) => g.bindAsync('127.0.0.1:0', creds, (e, p) => e ? rej(e) : res(p)));
  const ports = JSON.stringify({ http: server.address().port, grpc: gport });
  fs.writeFileSync(args.ports + '.tmp', ports + '\n');
  fs.renameSync(args.ports + '.tmp', args.ports);
}
process.on('SIGTERM', () => process.exit(0));
main().catch(e => { console.error(e); process.exit(1); });
