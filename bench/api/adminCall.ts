/** A JSON call as the bench's admin: the body parsed, anything but 2xx thrown with its status and text. */
export function adminCall(apiUrl: string, token: string) {
  return async (method: string, path: string, body?: unknown): Promise<any> => {
    const r = await fetch(apiUrl + path, { method, headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: body ? JSON.stringify(body) : undefined });
    const t = await r.text();
    if (r.status >= 300) throw new Error(`${method} ${path} ${r.status} ${t}`);
    return JSON.parse(t || "null");
  };
}
