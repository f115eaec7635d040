// A minimal RFC 6455 WebSocket client over net/tls (Node 20 has no WebSocket client by default),
// enough for ACI exec/attach sessions: the password as the first TEXT frame, then optional raw input
// as BINARY frames; collects every data frame until the server closes or `ms` runs out.
"use strict";
const crypto = require("crypto");
const net = require("net");
const tls = require("tls");

function frame(opcode, payload) {
  const mask = crypto.randomBytes(4);
  const len = payload.length;
  let head;
  if (len < 126) {
    head = Buffer.from([0x80 | opcode, 0x80 | len]);
  } else if (len < 65536) {
    head = Buffer.alloc(4);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 126;
    head.writeUInt16BE(len, 2);
  } else {
    head = Buffer.alloc(10);
    head[0] = 0x80 | opcode;
    head[1] = 0x80 | 127;
    head.writeBigUInt64BE(BigInt(len), 2);
  }
  const body = Buffer.alloc(len);
  for (let i = 0; i < len; i++) body[i] = payload[i] ^ mask[i & 3];
  return Buffer.concat([head, mask, body]);
}

// session(uri, password, {input: string|Buffer|undefined, inputDelayMs, ms}) ->
//   Promise<{output, closedByServer, closeCode, status, error}>
function session(uri, password, opts = {}) {
  const u = new URL(uri);
  const secure = u.protocol === "wss:";
  const port = Number(u.port || (secure ? 443 : 80));
  const host = u.hostname.replace(/^\[|\]$/g, "");
  const key = crypto.randomBytes(16).toString("base64");
  const ms = opts.ms || 30000;
  return new Promise((resolve) => {
    const chunks = [];
    let buf = Buffer.alloc(0);
    let upgraded = false;
    let done = false;
    let status = 0;
    let closeCode = null;
    let closedByServer = false;
    const sock = secure
      ? tls.connect({ host, port, servername: net.isIP(host) ? undefined : host })
      : net.connect({ host, port });
    const finish = (error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve({ output: Buffer.concat(chunks).toString("utf8"), closedByServer, closeCode, status,
                error: error ? String(error.message || error) : null });
    };
    const timer = setTimeout(() => {
      if (upgraded) {
        try { sock.write(frame(8, Buffer.from([0x03, 0xe8]))); } catch (e) { /* gone */ }
      }
      finish(null);
    }, ms);
    sock.on("error", (e) => finish(e));
    sock.on("close", () => finish(null));
    sock.on(secure ? "secureConnect" : "connect", () => {
      sock.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\nHost: ${u.host}\r\nUpgrade: websocket\r\n` +
                 `Connection: Upgrade\r\nSec-WebSocket-Key: ${key}\r\nSec-WebSocket-Version: 13\r\n` +
                 `Origin: ${secure ? "https" : "http"}://${u.host}\r\n\r\n`);
    });
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString("latin1");
        buf = buf.subarray(end + 4);
        status = Number(head.split(" ")[1]);
        const accept = crypto.createHash("sha1").update(key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")
          .digest("base64");
        const m = /^sec-websocket-accept:\s*(\S+)/im.exec(head);
        if (status !== 101 || !m || m[1] !== accept) {
          chunks.push(buf);
          return finish(new Error(`handshake failed: ${head.split("\r\n")[0]}`));
        }
        upgraded = true;
        sock.write(frame(1, Buffer.from(password, "utf8")));
        if (opts.input !== undefined) {
          setTimeout(() => {
            if (!done) sock.write(frame(2, Buffer.from(opts.input)));
          }, opts.inputDelayMs || 200);
        }
      }
      for (;;) {
        if (buf.length < 2) return;
        const op = buf[0] & 0x0f;
        const masked = (buf[1] & 0x80) !== 0;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        const maskOff = off;
        if (masked) off += 4;
        if (buf.length < off + len) return;
        let payload = Buffer.from(buf.subarray(off, off + len));
        if (masked) for (let i = 0; i < len; i++) payload[i] ^= buf[maskOff + (i & 3)];
        buf = buf.subarray(off + len);
        if (op === 0 || op === 1 || op === 2) {
          chunks.push(payload);
        } else if (op === 8) {
          closedByServer = true;
          closeCode = payload.length >= 2 ? payload.readUInt16BE(0) : null;
          try { sock.write(frame(8, payload.subarray(0, 2))); } catch (e) { /* gone */ }
          return finish(null);
        } else if (op === 9) {
          sock.write(frame(10, payload));
        }
      }
    });
  });
}

module.exports = { session };
