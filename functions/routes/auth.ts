import { eq } from "drizzle-orm";
import { Hono } from "hono";
import { z } from "zod";
import { users } from "../../db/schema.ts";
import type { AppEnv } from "../../core/app-env.ts";
import { ensureBootstrap } from "../auth/bootstrap.ts";
import { MAX_CLIENT_FAILURES, MAX_FAILURES, reserveLoginAttempt, WINDOW_SECONDS } from "../auth/loginThrottle.ts";
import { issueSessionToken } from "../auth/tokens.ts";
import { burnPasswordCheck, verifyPassword } from "../../core/crypto/passwords.ts";
import { ApiError } from "../../core/errors.ts";
import { transact } from "../middleware/auditTrail.ts";
import { authenticate } from "../middleware/authenticate.ts";
import { validate } from "../../core/validation.ts";
import { describe } from "../../core/openapi/describe.ts";
import { callerSchema, sessionSchema } from "../../protocol/api/access.ts";

const loginBody = z.strictObject({
  username: z.string().min(1).max(255),
  password: z.string().min(1).max(1024),
});

const doc = describe("Auth");

/** POST /login is public; everything else here needs a caller. */
export const authRoutes = new Hono<AppEnv>()
  .post("/login", doc({
    summary: "Log in with a username and password for a session token",
    access: "public",
    description: `The token is HS256, 15 minutes by default. Each attempt is reserved before the password is checked: after ${MAX_FAILURES} failures for a username from one client address, or ${MAX_CLIENT_FAILURES} from one address across usernames, within ${WINDOW_SECONDS / 60} minutes (from the first), 429 \`too_many_attempts\` with Retry-After until the window ends, even for the right password. Another address is not affected.`,
    responses: { 200: sessionSchema },
    errors: [401, 429],
  }), validate("json", loginBody), async (c) => {
    const { username, password } = c.req.valid("json");
    const { db, config, kv } = c.var.services;
    // Reserved before the password is checked, so the right password during a lock is refused too (and costs no PBKDF2).
    const attempt = await reserveLoginAttempt(kv, username, c.var.clientAddress);
    if (attempt.retryAfter !== null) {
      const retryAfter = attempt.retryAfter;
      await transact(c, async (_tx, record) => record({
        action: "LOGIN_THROTTLED", resourceType: "user", details: { username, retryAfter }, statusCode: 429,
      }));
      throw new ApiError(429, "too_many_attempts", `too many failed logins; retry in ${retryAfter} s`,
        { retryAfter }, { "Retry-After": String(retryAfter) });
    }
    await ensureBootstrap(db, config);
    const [user] = await db.select().from(users).where(eq(users.username, username)).limit(1);
    const ok = user && !user.disabled ? await verifyPassword(password, user.passwordHash) : (await burnPasswordCheck(password), false);
    if (!ok || !user) {
      // The reservation stays: it is this failure's count.
      await transact(c, async (_tx, record) => record({
        userId: user?.id ?? null, action: "AUTH_FAILED", resourceType: "user", resourceId: user?.id ?? null,
        details: { username, reason: user?.disabled ? "disabled" : "bad_credentials" }, statusCode: 401,
      }));
      throw new ApiError(401, "invalid_credentials", "username or password is wrong");
    }
    await attempt.release();
    const session = await issueSessionToken({ sub: user.id, username: user.username, role: user.role }, config.jwtSecret, config.jwtTtlSeconds);
    await transact(c, async (tx, record) => {
      await tx.update(users).set({ lastLogin: new Date() }).where(eq(users.id, user.id));
      record({ userId: user.id, action: "USER_LOGIN", resourceType: "user", resourceId: user.id, statusCode: 200 });
    });
    return c.json({ token: session.token, expiresAt: session.expiresAt, user: { id: user.id, username: user.username, role: user.role } });
  })
  .get("/me", doc({ summary: "Who the caller is: user, role, effective permissions", responses: { 200: callerSchema } }), authenticate, (c) => {
    const p = c.var.principal!;
    return c.json({
      id: p.userId, username: p.username, role: p.role, team: p.team, via: p.via,
      ...(p.apiKeyId ? { apiKeyId: p.apiKeyId } : {}),
      permissions: p.permissions,
    });
  });
