/**
 * The few pieces of the Postgres v3 wire protocol the Neon relay needs to act
 * as Neon's proxy does (dev/pg-proxy.ts): read startup packets and typed
 * messages, follow message boundaries in a stream without copying it, build
 * the handful of messages it sends, and log in to Postgres with SCRAM-SHA-256
 * (RFC 5802/7677) using Node's native crypto.
 */
import crypto from "node:crypto";

export const PROTOCOL_3 = 196608;
export const SSL_REQUEST = 80877103;
export const GSSENC_REQUEST = 80877104;
export const CANCEL_REQUEST = 80877102;

/** Larger startup packets or auth messages than this are refused (Postgres caps startup at 10,000 bytes). */
const MAX_HANDSHAKE_MESSAGE = 64 * 1024;

export interface WireMessage {
  type: string;
  body: Buffer;
  /** The whole message as sent (type byte, length, body). */
  raw: Buffer;
}

/** Accumulates bytes and hands out whole messages; for the handshake, where messages are small. */
export class WireReader {
  private buf: Buffer = Buffer.alloc(0);

  push(chunk: Buffer): void {
    this.buf = this.buf.length === 0 ? chunk : Buffer.concat([this.buf, chunk]);
  }

  /** An untyped startup-phase packet (int32 length, int32 code, parameters), or undefined until one is whole. */
  startupPacket(): Buffer | undefined {
    if (this.buf.length < 4) return undefined;
    const len = this.buf.readInt32BE(0);
    if (len < 8 || len > MAX_HANDSHAKE_MESSAGE) throw new Error(`bad startup packet length ${len}`);
    if (this.buf.length < len) return undefined;
    const packet = this.buf.subarray(0, len);
    this.buf = this.buf.subarray(len);
    return packet;
  }

  message(): WireMessage | undefined {
    if (this.buf.length < 5) return undefined;
    const len = this.buf.readInt32BE(1);
    if (len < 4 || len > MAX_HANDSHAKE_MESSAGE) throw new Error(`bad message length ${len}`);
    if (this.buf.length < 1 + len) return undefined;
    const raw = this.buf.subarray(0, 1 + len);
    this.buf = this.buf.subarray(1 + len);
    return { type: String.fromCharCode(raw[0]!), body: raw.subarray(5), raw };
  }

  /** Whatever follows the last whole message, and the reader is empty again. */
  rest(): Buffer {
    const r = this.buf;
    this.buf = Buffer.alloc(0);
    return r;
  }
}

/**
 * Follows typed-message boundaries through a stream of chunks without
 * buffering it (result sets may be large): reports each message's type and
 * where it starts in the chunk (negative when its header began in an earlier
 * chunk), and remembers the transaction status of the last ReadyForQuery.
 */
export class MessageBoundaries {
  private header: Buffer = Buffer.alloc(0);
  private remaining = 0;
  private statusNext = false;
  /** 'I' idle, 'T' in a transaction, 'E' in a failed transaction. */
  lastStatus = "I";

  feed(chunk: Buffer, onHeader: (type: string, start: number) => void = () => {}): void {
    let i = 0;
    while (i < chunk.length) {
      if (this.remaining > 0) {
        if (this.statusNext) {
          this.lastStatus = String.fromCharCode(chunk[i]!);
          this.statusNext = false;
        }
        const skip = Math.min(this.remaining, chunk.length - i);
        i += skip;
        this.remaining -= skip;
        continue;
      }
      const start = i - this.header.length;
      const take = Math.min(5 - this.header.length, chunk.length - i);
      this.header = Buffer.concat([this.header, chunk.subarray(i, i + take)]);
      i += take;
      if (this.header.length < 5) break;
      const type = String.fromCharCode(this.header[0]!);
      this.remaining = Math.max(0, this.header.readInt32BE(1) - 4);
      this.header = Buffer.alloc(0);
      this.statusNext = type === "Z" && this.remaining > 0;
      onHeader(type, start);
    }
  }

  /** True between messages (nothing half-received). */
  get atBoundary(): boolean {
    return this.header.length === 0 && this.remaining === 0;
  }
}

const int32 = (n: number) => {
  const b = Buffer.alloc(4);
  b.writeInt32BE(n);
  return b;
};
const cstring = (s: string) => Buffer.from(`${s}\0`, "utf8");

export function message(type: string, ...parts: Buffer[]): Buffer {
  const body = Buffer.concat(parts);
  return Buffer.concat([Buffer.from(type, "latin1"), int32(body.length + 4), body]);
}

/** AuthenticationOk (0) or AuthenticationCleartextPassword (3). */
export const authentication = (code: 0 | 3) => message("R", int32(code));
export const readyForQuery = (status: string) => message("Z", Buffer.from(status, "latin1"));
export const simpleQuery = (text: string) => message("Q", cstring(text));
export const terminate = () => message("X");
export const passwordMessage = (password: string) => message("p", cstring(password));

/** A FATAL ErrorResponse with a SQLSTATE, for failures the relay itself detects. */
export function fatal(code: string, text: string): Buffer {
  return message("E", Buffer.from("SFATAL\0VFATAL\0", "utf8"), Buffer.from(`C${code}\0M${text}\0\0`, "utf8"));
}

/** The parameters of a protocol-3 startup packet (user, database, application_name, options, …). */
export function startupParameters(packet: Buffer): Record<string, string> {
  const params: Record<string, string> = {};
  const fields = packet.subarray(8).toString("utf8").split("\0");
  for (let i = 0; i + 1 < fields.length && fields[i] !== ""; i += 2) params[fields[i]!] = fields[i + 1]!;
  return params;
}

/** The C-string body of a PasswordMessage. */
export function passwordOf(body: Buffer): string {
  const end = body.indexOf(0);
  return body.subarray(0, end < 0 ? body.length : end).toString("utf8");
}

/** The fields of an ErrorResponse ('M' message, 'C' SQLSTATE). */
export function errorFields(body: Buffer): Record<string, string> {
  const fields: Record<string, string> = {};
  let i = 0;
  while (i < body.length && body[i] !== 0) {
    const end = body.indexOf(0, i + 1);
    if (end < 0) break;
    fields[String.fromCharCode(body[i]!)] = body.subarray(i + 1, end).toString("utf8");
    i = end + 1;
  }
  return fields;
}

export function md5Password(user: string, password: string, salt: Buffer): string {
  const md5 = (b: Buffer | string) => crypto.createHash("md5").update(b).digest("hex");
  return "md5" + md5(Buffer.concat([Buffer.from(md5(password + user)), salt]));
}

// SaltedPassword depends only on (password, salt, iterations): a server keeps one salt per role,
// so every login after the first skips the PBKDF2.
const saltedCache = new Map<string, Buffer>();

/** The client side of one SCRAM-SHA-256 exchange (no channel binding: the hop to Postgres is plain TCP). */
export class ScramClient {
  private readonly nonce = crypto.randomBytes(18).toString("base64");
  private readonly firstBare = `n=*,r=${this.nonce}`;
  private serverSignature = "";

  constructor(private readonly password: string) {}

  initialResponse(): Buffer {
    const data = Buffer.from(`n,,${this.firstBare}`, "utf8");
    return message("p", cstring("SCRAM-SHA-256"), int32(data.length), data);
  }

  continueResponse(serverFirst: string): Buffer {
    const attrs = Object.fromEntries(serverFirst.split(",").map((kv) => [kv[0], kv.slice(2)]));
    const { r, s, i } = attrs as { r?: string; s?: string; i?: string };
    if (!r?.startsWith(this.nonce) || !s || !i) throw new Error("SCRAM: malformed server-first-message");
    const key = `${this.password}\0${s}\0${i}`;
    let salted = saltedCache.get(key);
    if (!salted) {
      salted = crypto.pbkdf2Sync(this.password, Buffer.from(s, "base64"), Number(i), 32, "sha256");
      if (saltedCache.size > 100) saltedCache.clear();
      saltedCache.set(key, salted);
    }
    const hmac = (k: Buffer, text: string) => crypto.createHmac("sha256", k).update(text).digest();
    const clientKey = hmac(salted, "Client Key");
    const storedKey = crypto.createHash("sha256").update(clientKey).digest();
    const withoutProof = `c=biws,r=${r}`;
    const authMessage = `${this.firstBare},${serverFirst},${withoutProof}`;
    const signature = hmac(storedKey, authMessage);
    const proof = Buffer.from(clientKey.map((b, n) => b ^ signature[n]!));
    this.serverSignature = hmac(hmac(salted, "Server Key"), authMessage).toString("base64");
    return message("p", Buffer.from(`${withoutProof},p=${proof.toString("base64")}`, "utf8"));
  }

  verifyFinal(serverFinal: string): void {
    if (serverFinal !== `v=${this.serverSignature}`) throw new Error("SCRAM: the server's signature does not match");
  }
}
