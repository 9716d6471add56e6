// GENERATED from flows/primitives/*.json by flows/primitives/blueprints.mts. Do not edit.
import type { Blueprint } from "./types.ts";

export const BLUEPRINT_CATALOG: readonly Blueprint[] = [
 {
  "id": "coordination-participant",
  "kind": "flow",
  "name": "coordination participant",
  "description": "RedForge coordination participant: answers a coordinator's query (MQTT, redforge/ingest/{instance}) with CHAT_* and replies to it (docs/agents.md)",
  "entry": [
   "MQTT redforge/ingest/{instance}"
  ],
  "params": [
   {
    "name": "CHAT_API",
    "description": "`ollama` (/api/...) or `openai` (/v1/...): the API the model server speaks",
    "default": "ollama",
    "required": false,
    "secret": false
   },
   {
    "name": "CHAT_API_KEY",
    "description": "sent as Authorization: Bearer",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "CHAT_MODEL",
    "description": "the chat model",
    "default": "llama3.2 (ollama), gpt-4o-mini (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "CHAT_SYSTEM_PROMPT",
    "description": "the system message",
    "default": "Answer the question from the context only. If the context does not hold the answer, say so.",
    "required": false,
    "secret": false
   },
   {
    "name": "CHAT_URL",
    "description": "the model server's root URL (a trailing /v1 is accepted)",
    "default": "http://127.0.0.1:11434 (ollama), https://api.openai.com (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_BACKOFF_MS",
    "description": "first wait before a retry; doubles, capped at 30 s",
    "default": "500",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_MAX_ATTEMPTS",
    "description": "model calls per message before giving up",
    "default": "3",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_TIMEOUT_MS",
    "description": "per model call",
    "default": "60000",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfpeer-tab",
    "type": "tab",
    "label": "RedForge · coordination participant",
    "disabled": false,
    "info": "RedForge coordination participant: answers a coordinator's query (MQTT, redforge/ingest/{instance}) with CHAT_* and replies to it (docs/agents.md)"
   },
   {
    "id": "rfpeer-gate",
    "type": "redforge-gate",
    "name": "entry (MQTT)",
    "source": "mqtt",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfpeer-route"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfpeer-route",
    "type": "redforge-coordination-reply",
    "name": "keep reply route",
    "mode": "capture",
    "wires": [
     [
      "rfpeer-in"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfpeer-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "coordination-participant",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfpeer-request"
     ],
     [
      "rfpeer-exit"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfpeer-request",
    "type": "function",
    "name": "chat request",
    "func": "const api = String(env.get(\"CHAT_API\") || \"ollama\").toLowerCase();\nif (api !== \"ollama\" && api !== \"openai\") {\n  msg.agent.error = { code: \"invalid_input\", message: \"CHAT_API must be ollama or openai, not \" + api };\n  return [null, msg];\n}\nconst root = String(env.get(\"CHAT_URL\") || (api === \"openai\" ? \"https://api.openai.com\" : \"http://127.0.0.1:11434\")).replace(/\\/+$/, \"\").replace(/\\/v1$/, \"\");\nconst model = String(msg.agent.config.model || env.get(\"CHAT_MODEL\") || (api === \"openai\" ? \"gpt-4o-mini\" : \"llama3.2\"));\nconst headers = { \"content-type\": \"application/json\" };\nif (env.get(\"CHAT_API_KEY\")) headers.authorization = \"Bearer \" + env.get(\"CHAT_API_KEY\");\nconst p = typeof msg.payload === \"string\" ? { question: msg.payload } : msg.payload;\nconst context = p && p.context === undefined ? [] : p && p.context;\nconst texts = Array.isArray(context) ? context.map((c) => typeof c === \"string\" ? c : c && typeof c.text === \"string\" ? c.text : null) : null;\nif (!p || typeof p.question !== \"string\" || p.question.trim() === \"\" || !texts || texts.some((t) => t === null)) {\n  msg.agent.error = { code: \"invalid_input\", message: \"payload must be a question, or {question, context} with context texts or chunks [{text}]\" };\n  return [null, msg];\n}\nconst system = String(msg.agent.config.systemPrompt || env.get(\"CHAT_SYSTEM_PROMPT\") || \"Answer the question from the context only. If the context does not hold the answer, say so.\");\nconst user = (texts.length ? \"Context:\\n\" + texts.join(\"\\n\\n\") + \"\\n\\n\" : \"\") + \"Question: \" + p.question.trim();\nconst messages = [{ role: \"system\", content: system }, { role: \"user\", content: user }];\nconst body = { model: model, messages: messages, stream: false };\nconst temperature = msg.agent.config.temperature !== undefined ? Number(msg.agent.config.temperature) : undefined;\nif (temperature !== undefined && Number.isFinite(temperature)) {\n  if (api === \"openai\") body.temperature = temperature; else body.options = { temperature: temperature };\n}\nmsg.agent.request = { api: api, model: model, url: root + (api === \"openai\" ? \"/v1/chat/completions\" : \"/api/chat\"), headers: headers, body: body, prompt: user };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfpeer-call"
     ],
     [
      "rfpeer-out"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfpeer-call",
    "type": "redforge-model-policy",
    "name": "approved model?",
    "outputs": 2,
    "wires": [
     [
      "rfpeer-attempt"
     ],
     [
      "rfpeer-blocked"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfpeer-blocked",
    "type": "redforge-ai-audit",
    "name": "report blocked call",
    "property": "aiDecision",
    "wires": [
     [
      "rfpeer-out"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfpeer-attempt",
    "type": "function",
    "name": "call model",
    "func": "const r = msg.agent.request;\nmsg.agent.attempts = (msg.agent.attempts || 0) + 1;\nmsg.agent.callStarted = Date.now();\nmsg.url = r.url;\nmsg.method = \"POST\";\nmsg.headers = Object.assign({}, r.headers);\nmsg.payload = r.body;\nmsg.requestTimeout = Number(env.get(\"MODEL_TIMEOUT_MS\")) || 60000;\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfpeer-http"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfpeer-http",
    "type": "http request",
    "name": "model endpoint",
    "method": "use",
    "ret": "obj",
    "paytoqs": "ignore",
    "url": "",
    "tls": "",
    "persist": false,
    "proxy": "",
    "insecureHTTPParser": false,
    "authType": "",
    "senderr": false,
    "headers": [],
    "wires": [
     [
      "rfpeer-check"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfpeer-check",
    "type": "function",
    "name": "answered?",
    "func": "const a = msg.agent;\nconst code = msg.statusCode;\nconst max = Number(env.get(\"MODEL_MAX_ATTEMPTS\")) || 3;\nconst first = Number(env.get(\"MODEL_BACKOFF_MS\")) || 500;\nconst ok = typeof code === \"number\" && code >= 200 && code < 300;\nif (ok && msg.payload && typeof msg.payload === \"object\") {\n  node.status({});\n  return [msg, null, null];\n}\nconst what = ok ? \"an answer that is not JSON\" : typeof code === \"number\" ? \"HTTP \" + code : String(msg.payload).slice(0, 300);\nconst transient = !ok && (typeof code !== \"number\" || code === 408 || code === 429 || code >= 500);\nconst failCode = ok ? \"model_bad_answer\" : transient ? \"model_unavailable\" : \"model_rejected\";\nif (transient && a.attempts < max) {\n  msg.delay = Math.min(first * Math.pow(2, a.attempts - 1), 30000);\n  node.status({ fill: \"yellow\", shape: \"ring\", text: \"retry \" + (a.attempts + 1) + \"/\" + max + \" in \" + msg.delay + \" ms\" });\n  return [null, msg, null];\n}\nnode.status({ fill: \"red\", shape: \"dot\", text: what.slice(0, 40) });\na.error = {\n  code: failCode,\n  message: a.request.url + \" gave \" + what + \" (attempt \" + a.attempts + \" of \" + max + \")\",\n  attempts: a.attempts,\n};\nreturn [null, null, msg];",
    "outputs": 3,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfpeer-read"
     ],
     [
      "rfpeer-backoff"
     ],
     [
      "rfpeer-dlq"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfpeer-backoff",
    "type": "delay",
    "name": "back off",
    "pauseType": "delayv",
    "timeout": "1",
    "timeoutUnits": "seconds",
    "rate": "1",
    "nbRateUnits": "1",
    "rateUnits": "second",
    "randomFirst": "1",
    "randomLast": "5",
    "randomUnits": "seconds",
    "drop": false,
    "allowrate": false,
    "outputs": 1,
    "wires": [
     [
      "rfpeer-attempt"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 740,
    "y": 180
   },
   {
    "id": "rfpeer-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "coordination-participant",
    "wires": [
     [
      "rfpeer-out"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 940,
    "y": 180
   },
   {
    "id": "rfpeer-read",
    "type": "function",
    "name": "read answer",
    "func": "const r = msg.payload;\nconst api = msg.agent.request.api;\nconst choice = api === \"openai\" && Array.isArray(r.choices) ? r.choices[0] : undefined;\nconst answer = api === \"openai\" ? choice && choice.message && choice.message.content : r.message && r.message.content;\nif (typeof answer !== \"string\") {\n  msg.agent.error = { code: \"model_bad_answer\", message: \"no answer text from \" + msg.agent.request.url, attempts: msg.agent.attempts };\n  return [null, msg];\n}\nconst inputTokens = api === \"openai\" ? r.usage && r.usage.prompt_tokens : r.prompt_eval_count;\nconst outputTokens = api === \"openai\" ? r.usage && r.usage.completion_tokens : r.eval_count;\nconst finishReason = api === \"openai\" ? choice.finish_reason : r.done_reason;\nmsg.aiDecision = Object.assign({\n  provider: msg.agent.request.api === \"openai\" ? \"openai\" : \"ollama\",\n  model: msg.agent.request.model,\n  operationName: \"chat\",\n  latencyMs: Date.now() - msg.agent.callStarted,\n  metadata: { flowId: msg.agent.flowId, attempts: msg.agent.attempts },\n}, { responseModel: r.model, responseId: r.id, prompt: msg.agent.request.prompt, response: answer, inputTokens: inputTokens, outputTokens: outputTokens, finishReason: finishReason });\nmsg.payload = { answer: answer, model: r.model || msg.agent.request.model, inputTokens: inputTokens, outputTokens: outputTokens, finishReason: finishReason };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfpeer-audit"
     ],
     [
      "rfpeer-out"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 1140,
    "y": 180
   },
   {
    "id": "rfpeer-audit",
    "type": "redforge-ai-audit",
    "name": "report model call",
    "property": "aiDecision",
    "wires": [
     [
      "rfpeer-out"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 140,
    "y": 280
   },
   {
    "id": "rfpeer-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "coordination-participant",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfpeer-exit"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 340,
    "y": 280
   },
   {
    "id": "rfpeer-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfpeer-reply"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 540,
    "y": 280
   },
   {
    "id": "rfpeer-reply",
    "type": "redforge-coordination-reply",
    "name": "reply to coordinator",
    "mode": "reply",
    "wires": [],
    "z": "rfpeer-tab",
    "x": 740,
    "y": 280
   },
   {
    "id": "rfpeer-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rfpeer-route",
     "rfpeer-request",
     "rfpeer-call",
     "rfpeer-attempt",
     "rfpeer-check",
     "rfpeer-read"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfpeer-failed"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 940,
    "y": 280
   },
   {
    "id": "rfpeer-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rfpeer-out"
     ]
    ],
    "z": "rfpeer-tab",
    "x": 1140,
    "y": 280
   }
  ]
 },
 {
  "id": "embeddings",
  "kind": "flow",
  "name": "embeddings",
  "description": "RedForge agent primitive: POST /agents/embeddings (docs/agents.md)",
  "entry": [
   "POST /agents/embeddings"
  ],
  "params": [
   {
    "name": "EMBED_API",
    "description": "`ollama` (/api/...) or `openai` (/v1/...): the API the model server speaks",
    "default": "ollama",
    "required": false,
    "secret": false
   },
   {
    "name": "EMBED_API_KEY",
    "description": "sent as Authorization: Bearer",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "EMBED_DIMENSIONS",
    "description": "dimensions to ask the model for (optional)",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "EMBED_MODEL",
    "description": "the embedding model",
    "default": "nomic-embed-text (ollama), text-embedding-3-small (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "EMBED_URL",
    "description": "the model server's root URL (a trailing /v1 is accepted)",
    "default": "http://127.0.0.1:11434 (ollama), https://api.openai.com (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_BACKOFF_MS",
    "description": "first wait before a retry; doubles, capped at 30 s",
    "default": "500",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_MAX_ATTEMPTS",
    "description": "model calls per message before giving up",
    "default": "3",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_TIMEOUT_MS",
    "description": "per model call",
    "default": "60000",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfembed-tab",
    "type": "tab",
    "label": "RedForge · embeddings",
    "disabled": false,
    "info": "RedForge agent primitive: POST /agents/embeddings (docs/agents.md)"
   },
   {
    "id": "rfembed-http-in",
    "type": "http in",
    "name": "POST /agents/embeddings",
    "url": "/agents/embeddings",
    "method": "post",
    "upload": false,
    "wires": [
     [
      "rfembed-gate"
     ]
    ],
    "z": "rfembed-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfembed-gate",
    "type": "redforge-gate",
    "name": "entry",
    "source": "input",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfembed-in"
     ]
    ],
    "z": "rfembed-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfembed-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "embeddings",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfembed-request"
     ],
     [
      "rfembed-exit"
     ]
    ],
    "z": "rfembed-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfembed-request",
    "type": "function",
    "name": "embedding request",
    "func": "const api = String(env.get(\"EMBED_API\") || \"ollama\").toLowerCase();\nif (api !== \"ollama\" && api !== \"openai\") {\n  msg.agent.error = { code: \"invalid_input\", message: \"EMBED_API must be ollama or openai, not \" + api };\n  return [null, msg];\n}\nconst root = String(env.get(\"EMBED_URL\") || (api === \"openai\" ? \"https://api.openai.com\" : \"http://127.0.0.1:11434\")).replace(/\\/+$/, \"\").replace(/\\/v1$/, \"\");\nconst model = String(msg.agent.config.model || env.get(\"EMBED_MODEL\") || (api === \"openai\" ? \"text-embedding-3-small\" : \"nomic-embed-text\"));\nconst headers = { \"content-type\": \"application/json\" };\nif (env.get(\"EMBED_API_KEY\")) headers.authorization = \"Bearer \" + env.get(\"EMBED_API_KEY\");\nconst items = typeof msg.payload === \"string\" ? [msg.payload] : msg.payload;\nconst texts = Array.isArray(items) ? items.map((i) => typeof i === \"string\" ? i : i && typeof i.text === \"string\" ? i.text : null) : null;\nif (!texts || texts.length === 0 || texts.some((t) => t === null || t.length === 0)) {\n  msg.agent.error = { code: \"invalid_input\", message: \"payload must be a text, an array of texts, or chunks [{text}], none empty\" };\n  return [null, msg];\n}\nmsg.agent.items = items;\nconst dimensions = Number(msg.agent.config.dimensions || env.get(\"EMBED_DIMENSIONS\")) || undefined;\nconst body = { model: model, input: texts };\nif (dimensions) body.dimensions = dimensions;\nmsg.agent.request = { api: api, model: model, url: root + (api === \"openai\" ? \"/v1/embeddings\" : \"/api/embed\"), headers: headers, body: body };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfembed-call"
     ],
     [
      "rfembed-out"
     ]
    ],
    "z": "rfembed-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfembed-call",
    "type": "redforge-model-policy",
    "name": "approved model?",
    "outputs": 2,
    "wires": [
     [
      "rfembed-attempt"
     ],
     [
      "rfembed-blocked"
     ]
    ],
    "z": "rfembed-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfembed-blocked",
    "type": "redforge-ai-audit",
    "name": "report blocked call",
    "property": "aiDecision",
    "wires": [
     [
      "rfembed-out"
     ]
    ],
    "z": "rfembed-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfembed-attempt",
    "type": "function",
    "name": "call model",
    "func": "const r = msg.agent.request;\nmsg.agent.attempts = (msg.agent.attempts || 0) + 1;\nmsg.agent.callStarted = Date.now();\nmsg.url = r.url;\nmsg.method = \"POST\";\nmsg.headers = Object.assign({}, r.headers);\nmsg.payload = r.body;\nmsg.requestTimeout = Number(env.get(\"MODEL_TIMEOUT_MS\")) || 60000;\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfembed-http"
     ]
    ],
    "z": "rfembed-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfembed-http",
    "type": "http request",
    "name": "model endpoint",
    "method": "use",
    "ret": "obj",
    "paytoqs": "ignore",
    "url": "",
    "tls": "",
    "persist": false,
    "proxy": "",
    "insecureHTTPParser": false,
    "authType": "",
    "senderr": false,
    "headers": [],
    "wires": [
     [
      "rfembed-check"
     ]
    ],
    "z": "rfembed-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfembed-check",
    "type": "function",
    "name": "answered?",
    "func": "const a = msg.agent;\nconst code = msg.statusCode;\nconst max = Number(env.get(\"MODEL_MAX_ATTEMPTS\")) || 3;\nconst first = Number(env.get(\"MODEL_BACKOFF_MS\")) || 500;\nconst ok = typeof code === \"number\" && code >= 200 && code < 300;\nif (ok && msg.payload && typeof msg.payload === \"object\") {\n  node.status({});\n  return [msg, null, null];\n}\nconst what = ok ? \"an answer that is not JSON\" : typeof code === \"number\" ? \"HTTP \" + code : String(msg.payload).slice(0, 300);\nconst transient = !ok && (typeof code !== \"number\" || code === 408 || code === 429 || code >= 500);\nconst failCode = ok ? \"model_bad_answer\" : transient ? \"model_unavailable\" : \"model_rejected\";\nif (transient && a.attempts < max) {\n  msg.delay = Math.min(first * Math.pow(2, a.attempts - 1), 30000);\n  node.status({ fill: \"yellow\", shape: \"ring\", text: \"retry \" + (a.attempts + 1) + \"/\" + max + \" in \" + msg.delay + \" ms\" });\n  return [null, msg, null];\n}\nnode.status({ fill: \"red\", shape: \"dot\", text: what.slice(0, 40) });\na.error = {\n  code: failCode,\n  message: a.request.url + \" gave \" + what + \" (attempt \" + a.attempts + \" of \" + max + \")\",\n  attempts: a.attempts,\n};\nreturn [null, null, msg];",
    "outputs": 3,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfembed-read"
     ],
     [
      "rfembed-backoff"
     ],
     [
      "rfembed-dlq"
     ]
    ],
    "z": "rfembed-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfembed-backoff",
    "type": "delay",
    "name": "back off",
    "pauseType": "delayv",
    "timeout": "1",
    "timeoutUnits": "seconds",
    "rate": "1",
    "nbRateUnits": "1",
    "rateUnits": "second",
    "randomFirst": "1",
    "randomLast": "5",
    "randomUnits": "seconds",
    "drop": false,
    "allowrate": false,
    "outputs": 1,
    "wires": [
     [
      "rfembed-attempt"
     ]
    ],
    "z": "rfembed-tab",
    "x": 740,
    "y": 180
   },
   {
    "id": "rfembed-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "embeddings",
    "wires": [
     [
      "rfembed-out"
     ]
    ],
    "z": "rfembed-tab",
    "x": 940,
    "y": 180
   },
   {
    "id": "rfembed-read",
    "type": "function",
    "name": "read vectors",
    "func": "const r = msg.payload;\nconst api = msg.agent.request.api;\nconst vectors = api === \"openai\"\n  ? (Array.isArray(r.data) ? r.data.slice().sort((a, b) => a.index - b.index).map((d) => d.embedding) : null)\n  : r.embeddings;\nconst items = msg.agent.items;\nif (!Array.isArray(vectors) || vectors.length !== items.length || !vectors.every((v) => Array.isArray(v) && v.length > 0)) {\n  msg.agent.error = { code: \"model_bad_answer\", message: \"expected \" + items.length + \" vector(s) from \" + msg.agent.request.url, attempts: msg.agent.attempts };\n  return [null, msg];\n}\nconst inputTokens = api === \"openai\" ? (r.usage && r.usage.prompt_tokens) : r.prompt_eval_count;\nmsg.aiDecision = Object.assign({\n  provider: msg.agent.request.api === \"openai\" ? \"openai\" : \"ollama\",\n  model: msg.agent.request.model,\n  operationName: \"embeddings\",\n  latencyMs: Date.now() - msg.agent.callStarted,\n  metadata: { flowId: msg.agent.flowId, attempts: msg.agent.attempts },\n}, { responseModel: r.model, inputTokens: inputTokens, outputTokens: 0, prompt: msg.agent.request.body.input.join(\"\\n\\n\") });\nmsg.payload = items.map((item, index) => Object.assign(typeof item === \"string\" ? { index: index, text: item } : Object.assign({ index: index }, item), { embedding: vectors[index] }));\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfembed-audit"
     ],
     [
      "rfembed-out"
     ]
    ],
    "z": "rfembed-tab",
    "x": 1140,
    "y": 180
   },
   {
    "id": "rfembed-audit",
    "type": "redforge-ai-audit",
    "name": "report model call",
    "property": "aiDecision",
    "wires": [
     [
      "rfembed-out"
     ]
    ],
    "z": "rfembed-tab",
    "x": 140,
    "y": 280
   },
   {
    "id": "rfembed-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "embeddings",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfembed-exit"
     ]
    ],
    "z": "rfembed-tab",
    "x": 340,
    "y": 280
   },
   {
    "id": "rfembed-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfembed-http-out"
     ]
    ],
    "z": "rfembed-tab",
    "x": 540,
    "y": 280
   },
   {
    "id": "rfembed-http-out",
    "type": "http response",
    "name": "answer",
    "statusCode": "",
    "headers": {},
    "wires": [],
    "z": "rfembed-tab",
    "x": 740,
    "y": 280
   },
   {
    "id": "rfembed-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rfembed-request",
     "rfembed-call",
     "rfembed-attempt",
     "rfembed-check",
     "rfembed-read"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfembed-failed"
     ]
    ],
    "z": "rfembed-tab",
    "x": 940,
    "y": 280
   },
   {
    "id": "rfembed-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rfembed-out"
     ]
    ],
    "z": "rfembed-tab",
    "x": 1140,
    "y": 280
   }
  ]
 },
 {
  "id": "error-handling",
  "kind": "flow",
  "name": "error handling",
  "description": "RedForge agent primitive: POST /agents/error-handling (docs/agents.md)",
  "entry": [
   "POST /agents/error-handling"
  ],
  "params": [
   {
    "name": "ERROR_BACKOFF_MS",
    "description": "first wait; doubles, capped at 30 s",
    "default": "500",
    "required": false,
    "secret": false
   },
   {
    "name": "ERROR_MAX_ATTEMPTS",
    "description": "calls before giving up",
    "default": "3",
    "required": false,
    "secret": false
   },
   {
    "name": "ERROR_TARGETS",
    "description": "comma-separated URL prefixes error-handling may call",
    "default": "http://127.0.0.1:1880/agents/",
    "required": false,
    "secret": false
   },
   {
    "name": "ERROR_TIMEOUT_MS",
    "description": "per call; must exceed the called primitive's own retries",
    "default": "60000",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rferror-tab",
    "type": "tab",
    "label": "RedForge · error handling",
    "disabled": false,
    "info": "RedForge agent primitive: POST /agents/error-handling (docs/agents.md)"
   },
   {
    "id": "rferror-http-in",
    "type": "http in",
    "name": "POST /agents/error-handling",
    "url": "/agents/error-handling",
    "method": "post",
    "upload": false,
    "wires": [
     [
      "rferror-gate"
     ]
    ],
    "z": "rferror-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rferror-gate",
    "type": "redforge-gate",
    "name": "entry",
    "source": "input",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rferror-in"
     ]
    ],
    "z": "rferror-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rferror-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "error-handling",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rferror-request"
     ],
     [
      "rferror-exit"
     ]
    ],
    "z": "rferror-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rferror-request",
    "type": "function",
    "name": "target",
    "func": "const p = msg.payload;\nconst targets = String(env.get(\"ERROR_TARGETS\") || \"http://127.0.0.1:1880/agents/\").split(\",\").map((t) => t.trim()).filter(Boolean);\nif (!p || typeof p !== \"object\" || typeof p.url !== \"string\" || !p.message || typeof p.message !== \"object\") {\n  msg.agent.error = { code: \"invalid_input\", message: \"payload must be {url, message}: the primitive to call and the msg_input to send it\" };\n  return [null, msg];\n}\nif (!targets.some((t) => p.url.startsWith(t))) {\n  msg.agent.error = { code: \"invalid_input\", message: p.url + \" is not under ERROR_TARGETS (\" + targets.join(\", \") + \")\" };\n  return [null, msg];\n}\nmsg.agent.request = { api: \"primitive\", model: \"\", url: p.url, headers: { \"content-type\": \"application/json\" }, body: p.message };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rferror-call"
     ],
     [
      "rferror-out"
     ]
    ],
    "z": "rferror-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rferror-call",
    "type": "junction",
    "wires": [
     [
      "rferror-attempt"
     ]
    ],
    "z": "rferror-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rferror-attempt",
    "type": "function",
    "name": "call model",
    "func": "const r = msg.agent.request;\nmsg.agent.attempts = (msg.agent.attempts || 0) + 1;\nmsg.agent.callStarted = Date.now();\nmsg.url = r.url;\nmsg.method = \"POST\";\nmsg.headers = Object.assign({}, r.headers);\nmsg.payload = r.body;\nmsg.requestTimeout = Number(env.get(\"ERROR_TIMEOUT_MS\")) || 60000;\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rferror-http"
     ]
    ],
    "z": "rferror-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rferror-http",
    "type": "http request",
    "name": "model endpoint",
    "method": "use",
    "ret": "obj",
    "paytoqs": "ignore",
    "url": "",
    "tls": "",
    "persist": false,
    "proxy": "",
    "insecureHTTPParser": false,
    "authType": "",
    "senderr": false,
    "headers": [],
    "wires": [
     [
      "rferror-check"
     ]
    ],
    "z": "rferror-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rferror-check",
    "type": "function",
    "name": "answered?",
    "func": "const a = msg.agent;\nconst code = msg.statusCode;\nconst max = Number(env.get(\"ERROR_MAX_ATTEMPTS\")) || 3;\nconst first = Number(env.get(\"ERROR_BACKOFF_MS\")) || 500;\nconst ok = typeof code === \"number\" && code >= 200 && code < 300;\nif (ok && msg.payload && typeof msg.payload === \"object\") {\n  node.status({});\n  return [msg, null, null];\n}\nconst what = ok ? \"an answer that is not JSON\" : typeof code === \"number\" ? \"HTTP \" + code : String(msg.payload).slice(0, 300);\nconst answeredCode = msg.payload && typeof msg.payload === \"object\" && msg.payload.error && msg.payload.error.code;\nconst final = [\"model_rejected\", \"model_bad_answer\", \"invalid_input\"].includes(answeredCode);\nconst transient = !ok && !final && (typeof code !== \"number\" || code === 408 || code === 429 || code >= 500);\nconst failCode = answeredCode || (ok ? \"target_bad_answer\" : transient ? \"target_unavailable\" : \"target_rejected\");\nif (transient && a.attempts < max) {\n  msg.delay = Math.min(first * Math.pow(2, a.attempts - 1), 30000);\n  node.status({ fill: \"yellow\", shape: \"ring\", text: \"retry \" + (a.attempts + 1) + \"/\" + max + \" in \" + msg.delay + \" ms\" });\n  return [null, msg, null];\n}\nnode.status({ fill: \"red\", shape: \"dot\", text: what.slice(0, 40) });\na.error = {\n  code: failCode,\n  message: a.request.url + \" gave \" + what + \" (attempt \" + a.attempts + \" of \" + max + \")\",\n  attempts: a.attempts,\n};\nreturn [null, null, msg];",
    "outputs": 3,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rferror-read"
     ],
     [
      "rferror-backoff"
     ],
     [
      "rferror-dlq"
     ]
    ],
    "z": "rferror-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rferror-backoff",
    "type": "delay",
    "name": "back off",
    "pauseType": "delayv",
    "timeout": "1",
    "timeoutUnits": "seconds",
    "rate": "1",
    "nbRateUnits": "1",
    "rateUnits": "second",
    "randomFirst": "1",
    "randomLast": "5",
    "randomUnits": "seconds",
    "drop": false,
    "allowrate": false,
    "outputs": 1,
    "wires": [
     [
      "rferror-attempt"
     ]
    ],
    "z": "rferror-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rferror-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "error-handling",
    "wires": [
     [
      "rferror-out"
     ]
    ],
    "z": "rferror-tab",
    "x": 740,
    "y": 180
   },
   {
    "id": "rferror-read",
    "type": "function",
    "name": "answered",
    "func": "msg.payload = { answer: msg.payload, attempts: msg.agent.attempts };\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rferror-out"
     ]
    ],
    "z": "rferror-tab",
    "x": 940,
    "y": 180
   },
   {
    "id": "rferror-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "error-handling",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rferror-exit"
     ]
    ],
    "z": "rferror-tab",
    "x": 1140,
    "y": 180
   },
   {
    "id": "rferror-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rferror-http-out"
     ]
    ],
    "z": "rferror-tab",
    "x": 140,
    "y": 280
   },
   {
    "id": "rferror-http-out",
    "type": "http response",
    "name": "answer",
    "statusCode": "",
    "headers": {},
    "wires": [],
    "z": "rferror-tab",
    "x": 340,
    "y": 280
   },
   {
    "id": "rferror-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rferror-request",
     "rferror-call",
     "rferror-attempt",
     "rferror-check",
     "rferror-read"
    ],
    "uncaught": false,
    "wires": [
     [
      "rferror-failed"
     ]
    ],
    "z": "rferror-tab",
    "x": 540,
    "y": 280
   },
   {
    "id": "rferror-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rferror-out"
     ]
    ],
    "z": "rferror-tab",
    "x": 740,
    "y": 280
   }
  ]
 },
 {
  "id": "file-converter",
  "kind": "flow",
  "name": "file converter",
  "description": "RedForge agent primitive: POST /agents/file-converter (docs/agents.md)",
  "entry": [
   "POST /agents/file-converter"
  ],
  "params": [
   {
    "name": "CONVERT_MAX_BYTES",
    "description": "largest document accepted",
    "default": "20971520",
    "required": false,
    "secret": false
   },
   {
    "name": "TIKA_TIMEOUT_MS",
    "description": "per Tika call",
    "default": "60000",
    "required": false,
    "secret": false
   },
   {
    "name": "TIKA_URL",
    "description": "an Apache Tika server; when set, documents are converted by PUT {TIKA_URL}/tika, else by the built-in PDF/DOCX/text readers",
    "default": null,
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfconvert-tab",
    "type": "tab",
    "label": "RedForge · file converter",
    "disabled": false,
    "info": "RedForge agent primitive: POST /agents/file-converter (docs/agents.md)"
   },
   {
    "id": "rfconvert-http-in",
    "type": "http in",
    "name": "POST /agents/file-converter",
    "url": "/agents/file-converter",
    "method": "post",
    "upload": false,
    "wires": [
     [
      "rfconvert-gate"
     ]
    ],
    "z": "rfconvert-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfconvert-gate",
    "type": "redforge-gate",
    "name": "entry",
    "source": "input",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfconvert-in"
     ]
    ],
    "z": "rfconvert-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfconvert-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "file-converter",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfconvert-convert"
     ],
     [
      "rfconvert-exit"
     ]
    ],
    "z": "rfconvert-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfconvert-convert",
    "type": "redforge-convert",
    "name": "convert to text",
    "tikaUrl": "${TIKA_URL}",
    "maxBytes": "${CONVERT_MAX_BYTES}",
    "timeout": "${TIKA_TIMEOUT_MS}",
    "wires": [
     [
      "rfconvert-out"
     ],
     [
      "rfconvert-dlq"
     ]
    ],
    "z": "rfconvert-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfconvert-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "file-converter",
    "wires": [
     [
      "rfconvert-out"
     ]
    ],
    "z": "rfconvert-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfconvert-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "file-converter",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfconvert-exit"
     ]
    ],
    "z": "rfconvert-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfconvert-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfconvert-http-out"
     ]
    ],
    "z": "rfconvert-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfconvert-http-out",
    "type": "http response",
    "name": "answer",
    "statusCode": "",
    "headers": {},
    "wires": [],
    "z": "rfconvert-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfconvert-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rfconvert-convert"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfconvert-failed"
     ]
    ],
    "z": "rfconvert-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfconvert-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rfconvert-out"
     ]
    ],
    "z": "rfconvert-tab",
    "x": 740,
    "y": 180
   }
  ]
 },
 {
  "id": "memory",
  "kind": "flow",
  "name": "conversation memory",
  "description": "RedForge agent primitive: POST /agents/memory (docs/agents.md)",
  "entry": [
   "POST /agents/memory"
  ],
  "params": [
   {
    "name": "MEMORY_MAX_KEPT",
    "description": "turns kept per conversation (Redis)",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "MEMORY_POSTGRES_URL",
    "description": "the Postgres holding conversation memory",
    "default": "the instance's DATABASE_URL",
    "required": false,
    "secret": true
   },
   {
    "name": "MEMORY_RECALL_LAST",
    "description": "turns a recall returns",
    "default": "20",
    "required": false,
    "secret": false
   },
   {
    "name": "MEMORY_REDIS_PREFIX",
    "description": "key prefix of a conversation's list",
    "default": "redforge:memory:",
    "required": false,
    "secret": false
   },
   {
    "name": "MEMORY_TABLE",
    "description": "the memory table, created at first use",
    "default": "redforge_memory",
    "required": false,
    "secret": false
   },
   {
    "name": "MEMORY_TTL_S",
    "description": "TTL refreshed on each append (Redis)",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "REDIS_TOKEN",
    "description": "Upstash REST token (https:// REDIS_URL)",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "REDIS_URL",
    "description": "redis://, rediss:// or an Upstash https:// URL; when set memory lives in Redis",
    "default": null,
    "required": false,
    "secret": true
   }
  ],
  "flows": [
   {
    "id": "rfmemory-tab",
    "type": "tab",
    "label": "RedForge · conversation memory",
    "disabled": false,
    "info": "RedForge agent primitive: POST /agents/memory (docs/agents.md)"
   },
   {
    "id": "rfmemory-http-in",
    "type": "http in",
    "name": "POST /agents/memory",
    "url": "/agents/memory",
    "method": "post",
    "upload": false,
    "wires": [
     [
      "rfmemory-gate"
     ]
    ],
    "z": "rfmemory-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfmemory-gate",
    "type": "redforge-gate",
    "name": "entry",
    "source": "input",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfmemory-in"
     ]
    ],
    "z": "rfmemory-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfmemory-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "memory",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfmemory-memory"
     ],
     [
      "rfmemory-exit"
     ]
    ],
    "z": "rfmemory-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfmemory-memory",
    "type": "redforge-memory",
    "name": "conversation memory",
    "redisUrl": "${REDIS_URL}",
    "redisToken": "${REDIS_TOKEN}",
    "prefix": "${MEMORY_REDIS_PREFIX}",
    "ttl": "${MEMORY_TTL_S}",
    "maxKept": "${MEMORY_MAX_KEPT}",
    "postgresUrl": "${MEMORY_POSTGRES_URL}",
    "table": "${MEMORY_TABLE}",
    "last": "${MEMORY_RECALL_LAST}",
    "wires": [
     [
      "rfmemory-out"
     ],
     [
      "rfmemory-dlq"
     ]
    ],
    "z": "rfmemory-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfmemory-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "memory",
    "wires": [
     [
      "rfmemory-out"
     ]
    ],
    "z": "rfmemory-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfmemory-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "memory",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfmemory-exit"
     ]
    ],
    "z": "rfmemory-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfmemory-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfmemory-http-out"
     ]
    ],
    "z": "rfmemory-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfmemory-http-out",
    "type": "http response",
    "name": "answer",
    "statusCode": "",
    "headers": {},
    "wires": [],
    "z": "rfmemory-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfmemory-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rfmemory-memory"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfmemory-failed"
     ]
    ],
    "z": "rfmemory-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfmemory-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rfmemory-out"
     ]
    ],
    "z": "rfmemory-tab",
    "x": 740,
    "y": 180
   }
  ]
 },
 {
  "id": "query-processing",
  "kind": "flow",
  "name": "query processing",
  "description": "RedForge agent primitive: POST /agents/query-processing (docs/agents.md)",
  "entry": [
   "POST /agents/query-processing"
  ],
  "params": [
   {
    "name": "EMBED_API",
    "description": "`ollama` (/api/...) or `openai` (/v1/...): the API the model server speaks",
    "default": "ollama",
    "required": false,
    "secret": false
   },
   {
    "name": "EMBED_API_KEY",
    "description": "sent as Authorization: Bearer",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "EMBED_MODEL",
    "description": "the embedding model",
    "default": "nomic-embed-text (ollama), text-embedding-3-small (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "EMBED_URL",
    "description": "the model server's root URL (a trailing /v1 is accepted)",
    "default": "http://127.0.0.1:11434 (ollama), https://api.openai.com (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "MILVUS_DB",
    "description": "Milvus dbName",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "MILVUS_TOKEN",
    "description": "Milvus Authorization: Bearer token",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "MILVUS_URL",
    "description": "a Milvus REST v2 server; when set it is the vector store instead of Postgres",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_BACKOFF_MS",
    "description": "first wait before a retry; doubles, capped at 30 s",
    "default": "500",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_MAX_ATTEMPTS",
    "description": "model calls per message before giving up",
    "default": "3",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_TIMEOUT_MS",
    "description": "per model call",
    "default": "60000",
    "required": false,
    "secret": false
   },
   {
    "name": "QUERY_CANDIDATES",
    "description": "rows fetched from the store before reranking",
    "default": "4 × top K (at most 1000)",
    "required": false,
    "secret": false
   },
   {
    "name": "QUERY_MIN_SCORE",
    "description": "lowest cosine similarity kept",
    "default": "-1",
    "required": false,
    "secret": false
   },
   {
    "name": "QUERY_TOP_K",
    "description": "results per search",
    "default": "5",
    "required": false,
    "secret": false
   },
   {
    "name": "STORE_BACKEND",
    "description": "`auto` (pgvector when the extension can be created, else float8[]), `pgvector` or `array`",
    "default": "auto",
    "required": false,
    "secret": false
   },
   {
    "name": "STORE_COLLECTION",
    "description": "the collection when a message names none",
    "default": "default",
    "required": false,
    "secret": false
   },
   {
    "name": "STORE_POSTGRES_URL",
    "description": "the Postgres holding the vectors",
    "default": "the instance's DATABASE_URL",
    "required": false,
    "secret": true
   },
   {
    "name": "STORE_TABLE",
    "description": "the vectors' table (schema.table allowed), created at first use",
    "default": "redforge_vectors",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfquery-tab",
    "type": "tab",
    "label": "RedForge · query processing",
    "disabled": false,
    "info": "RedForge agent primitive: POST /agents/query-processing (docs/agents.md)"
   },
   {
    "id": "rfquery-http-in",
    "type": "http in",
    "name": "POST /agents/query-processing",
    "url": "/agents/query-processing",
    "method": "post",
    "upload": false,
    "wires": [
     [
      "rfquery-gate"
     ]
    ],
    "z": "rfquery-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfquery-gate",
    "type": "redforge-gate",
    "name": "entry",
    "source": "input",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfquery-in"
     ]
    ],
    "z": "rfquery-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfquery-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "query-processing",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfquery-request"
     ],
     [
      "rfquery-exit"
     ]
    ],
    "z": "rfquery-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfquery-request",
    "type": "function",
    "name": "query embedding request",
    "func": "const api = String(env.get(\"EMBED_API\") || \"ollama\").toLowerCase();\nif (api !== \"ollama\" && api !== \"openai\") {\n  msg.agent.error = { code: \"invalid_input\", message: \"EMBED_API must be ollama or openai, not \" + api };\n  return [null, msg];\n}\nconst root = String(env.get(\"EMBED_URL\") || (api === \"openai\" ? \"https://api.openai.com\" : \"http://127.0.0.1:11434\")).replace(/\\/+$/, \"\").replace(/\\/v1$/, \"\");\nconst model = String(msg.agent.config.model || env.get(\"EMBED_MODEL\") || (api === \"openai\" ? \"text-embedding-3-small\" : \"nomic-embed-text\"));\nconst headers = { \"content-type\": \"application/json\" };\nif (env.get(\"EMBED_API_KEY\")) headers.authorization = \"Bearer \" + env.get(\"EMBED_API_KEY\");\nconst p = msg.payload;\nconst store = !!(p && typeof p === \"object\" && p.candidates === undefined);\nconst ok = p && typeof p.query === \"string\" && p.query.trim() !== \"\" && (store\n  ? p.collection === undefined || typeof p.collection === \"string\"\n  : Array.isArray(p.candidates) && p.candidates.every((c) => c && Array.isArray(c.embedding) && c.embedding.length > 0 && c.embedding.every((x) => typeof x === \"number\")));\nif (!ok) {\n  msg.agent.error = { code: \"invalid_input\", message: \"payload must be {query, candidates: [{embedding: number[], ...}]} or {query, collection?} (search the vector store)\" };\n  return [null, msg];\n}\nconst topK = Math.min(Number(msg.agent.config.topK || env.get(\"QUERY_TOP_K\")) || 5, 1000);\nconst minScore = Number(msg.agent.config.minScore !== undefined ? msg.agent.config.minScore : env.get(\"QUERY_MIN_SCORE\") || -1);\nconst fetchK = Math.min(Math.max(Number(msg.agent.config.candidates || env.get(\"QUERY_CANDIDATES\")) || topK * 4, topK), 1000);\nmsg.agent.query = { text: p.query, candidates: store ? null : p.candidates, topK: topK, minScore: Number.isFinite(minScore) ? minScore : -1,\n  store: store, collection: store ? (p.collection || msg.agent.config.collection) : undefined, fetchK: fetchK };\nmsg.agent.request = { api: api, model: model, url: root + (api === \"openai\" ? \"/v1/embeddings\" : \"/api/embed\"), headers: headers, body: { model: model, input: [p.query] } };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfquery-call"
     ],
     [
      "rfquery-out"
     ]
    ],
    "z": "rfquery-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfquery-call",
    "type": "redforge-model-policy",
    "name": "approved model?",
    "outputs": 2,
    "wires": [
     [
      "rfquery-attempt"
     ],
     [
      "rfquery-blocked"
     ]
    ],
    "z": "rfquery-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfquery-blocked",
    "type": "redforge-ai-audit",
    "name": "report blocked call",
    "property": "aiDecision",
    "wires": [
     [
      "rfquery-out"
     ]
    ],
    "z": "rfquery-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfquery-attempt",
    "type": "function",
    "name": "call model",
    "func": "const r = msg.agent.request;\nmsg.agent.attempts = (msg.agent.attempts || 0) + 1;\nmsg.agent.callStarted = Date.now();\nmsg.url = r.url;\nmsg.method = \"POST\";\nmsg.headers = Object.assign({}, r.headers);\nmsg.payload = r.body;\nmsg.requestTimeout = Number(env.get(\"MODEL_TIMEOUT_MS\")) || 60000;\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfquery-http"
     ]
    ],
    "z": "rfquery-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfquery-http",
    "type": "http request",
    "name": "model endpoint",
    "method": "use",
    "ret": "obj",
    "paytoqs": "ignore",
    "url": "",
    "tls": "",
    "persist": false,
    "proxy": "",
    "insecureHTTPParser": false,
    "authType": "",
    "senderr": false,
    "headers": [],
    "wires": [
     [
      "rfquery-check"
     ]
    ],
    "z": "rfquery-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfquery-check",
    "type": "function",
    "name": "answered?",
    "func": "const a = msg.agent;\nconst code = msg.statusCode;\nconst max = Number(env.get(\"MODEL_MAX_ATTEMPTS\")) || 3;\nconst first = Number(env.get(\"MODEL_BACKOFF_MS\")) || 500;\nconst ok = typeof code === \"number\" && code >= 200 && code < 300;\nif (ok && msg.payload && typeof msg.payload === \"object\") {\n  node.status({});\n  return [msg, null, null];\n}\nconst what = ok ? \"an answer that is not JSON\" : typeof code === \"number\" ? \"HTTP \" + code : String(msg.payload).slice(0, 300);\nconst transient = !ok && (typeof code !== \"number\" || code === 408 || code === 429 || code >= 500);\nconst failCode = ok ? \"model_bad_answer\" : transient ? \"model_unavailable\" : \"model_rejected\";\nif (transient && a.attempts < max) {\n  msg.delay = Math.min(first * Math.pow(2, a.attempts - 1), 30000);\n  node.status({ fill: \"yellow\", shape: \"ring\", text: \"retry \" + (a.attempts + 1) + \"/\" + max + \" in \" + msg.delay + \" ms\" });\n  return [null, msg, null];\n}\nnode.status({ fill: \"red\", shape: \"dot\", text: what.slice(0, 40) });\na.error = {\n  code: failCode,\n  message: a.request.url + \" gave \" + what + \" (attempt \" + a.attempts + \" of \" + max + \")\",\n  attempts: a.attempts,\n};\nreturn [null, null, msg];",
    "outputs": 3,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfquery-rank"
     ],
     [
      "rfquery-backoff"
     ],
     [
      "rfquery-dlq"
     ]
    ],
    "z": "rfquery-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfquery-backoff",
    "type": "delay",
    "name": "back off",
    "pauseType": "delayv",
    "timeout": "1",
    "timeoutUnits": "seconds",
    "rate": "1",
    "nbRateUnits": "1",
    "rateUnits": "second",
    "randomFirst": "1",
    "randomLast": "5",
    "randomUnits": "seconds",
    "drop": false,
    "allowrate": false,
    "outputs": 1,
    "wires": [
     [
      "rfquery-attempt"
     ]
    ],
    "z": "rfquery-tab",
    "x": 740,
    "y": 180
   },
   {
    "id": "rfquery-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "query-processing",
    "wires": [
     [
      "rfquery-out"
     ]
    ],
    "z": "rfquery-tab",
    "x": 940,
    "y": 180
   },
   {
    "id": "rfquery-rank",
    "type": "function",
    "name": "rank by similarity",
    "func": "const r = msg.payload;\nconst api = msg.agent.request.api;\nconst q = api === \"openai\" ? r.data && r.data[0] && r.data[0].embedding : r.embeddings && r.embeddings[0];\nif (!Array.isArray(q) || q.length === 0) {\n  msg.agent.error = { code: \"model_bad_answer\", message: \"no query vector from \" + msg.agent.request.url, attempts: msg.agent.attempts };\n  return [null, msg];\n}\nconst wanted = msg.agent.query;\nconst inputTokens = api === \"openai\" ? (r.usage && r.usage.prompt_tokens) : r.prompt_eval_count;\nmsg.aiDecision = Object.assign({\n  provider: msg.agent.request.api === \"openai\" ? \"openai\" : \"ollama\",\n  model: msg.agent.request.model,\n  operationName: \"embeddings\",\n  latencyMs: Date.now() - msg.agent.callStarted,\n  metadata: { flowId: msg.agent.flowId, attempts: msg.agent.attempts },\n}, { responseModel: r.model, inputTokens: inputTokens, outputTokens: 0, prompt: wanted.text });\nif (wanted.store) {\n  // Store mode: the search runs after the audit node (search or answer).\n  wanted.vector = q;\n  msg.payload = null;\n  return [msg, null];\n}\nconst norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;\nconst qn = norm(q);\nconst mismatch = wanted.candidates.findIndex((c) => c.embedding.length !== q.length);\nif (mismatch >= 0) {\n  msg.agent.error = { code: \"invalid_input\", message: \"candidate \" + mismatch + \" has \" + wanted.candidates[mismatch].embedding.length + \" dimensions, the query \" + q.length + \": embed both with the same model\" };\n  return [null, msg];\n}\nconst scored = wanted.candidates.map((c, i) => {\n  const score = c.embedding.reduce((s, x, k) => s + x * q[k], 0) / (norm(c.embedding) * qn);\n  const rest = Object.assign({}, c);\n  delete rest.embedding;\n  return Object.assign({ index: i }, rest, { score: Math.round(score * 1e6) / 1e6 });\n});\nscored.sort((a, b) => b.score - a.score || a.index - b.index);\nconst results = scored.filter((s) => s.score >= wanted.minScore).slice(0, wanted.topK).map((s, i) => Object.assign({ rank: i + 1 }, s));\nmsg.payload = { query: wanted.text, model: msg.agent.request.model, results: results };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfquery-audit"
     ],
     [
      "rfquery-out"
     ]
    ],
    "z": "rfquery-tab",
    "x": 1140,
    "y": 180
   },
   {
    "id": "rfquery-audit",
    "type": "redforge-ai-audit",
    "name": "report model call",
    "property": "aiDecision",
    "wires": [
     [
      "rfquery-route"
     ]
    ],
    "z": "rfquery-tab",
    "x": 140,
    "y": 280
   },
   {
    "id": "rfquery-route",
    "type": "function",
    "name": "search the store?",
    "func": "const wanted = msg.agent.query;\nif (!wanted.store) return [msg, null];\nmsg.payload = { action: \"search\", vector: wanted.vector, topK: wanted.fetchK, minScore: wanted.minScore };\nif (wanted.collection !== undefined) msg.payload.collection = wanted.collection;\nreturn [null, msg];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfquery-out"
     ],
     [
      "rfquery-store"
     ]
    ],
    "z": "rfquery-tab",
    "x": 340,
    "y": 280
   },
   {
    "id": "rfquery-store",
    "type": "redforge-vector-store",
    "name": "vector store",
    "collection": "${STORE_COLLECTION}",
    "postgresUrl": "${STORE_POSTGRES_URL}",
    "table": "${STORE_TABLE}",
    "backend": "${STORE_BACKEND}",
    "milvusUrl": "${MILVUS_URL}",
    "milvusToken": "${MILVUS_TOKEN}",
    "milvusDb": "${MILVUS_DB}",
    "topK": "",
    "wires": [
     [
      "rfquery-rerank"
     ],
     [
      "rfquery-dlq"
     ]
    ],
    "z": "rfquery-tab",
    "x": 540,
    "y": 280
   },
   {
    "id": "rfquery-rerank",
    "type": "function",
    "name": "rerank by score",
    "func": "if (msg.agent.error) return msg;\nconst wanted = msg.agent.query;\nconst found = msg.payload;\n// The store's order is its own (approximate for Milvus): sort by score again, one result per text, then cut to topK.\nconst seen = new Set();\nconst results = found.results.slice()\n  .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))\n  .filter((x) => x.score >= wanted.minScore && !seen.has(x.text) && seen.add(x.text))\n  .slice(0, wanted.topK)\n  .map((x, i) => ({ rank: i + 1, score: x.score, id: x.id, text: x.text, metadata: x.metadata }));\nmsg.payload = { query: wanted.text, model: msg.agent.request.model, collection: found.collection, backend: found.backend, results: results };\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfquery-out"
     ]
    ],
    "z": "rfquery-tab",
    "x": 740,
    "y": 280
   },
   {
    "id": "rfquery-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "query-processing",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfquery-exit"
     ]
    ],
    "z": "rfquery-tab",
    "x": 940,
    "y": 280
   },
   {
    "id": "rfquery-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfquery-http-out"
     ]
    ],
    "z": "rfquery-tab",
    "x": 1140,
    "y": 280
   },
   {
    "id": "rfquery-http-out",
    "type": "http response",
    "name": "answer",
    "statusCode": "",
    "headers": {},
    "wires": [],
    "z": "rfquery-tab",
    "x": 140,
    "y": 380
   },
   {
    "id": "rfquery-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rfquery-request",
     "rfquery-call",
     "rfquery-attempt",
     "rfquery-check",
     "rfquery-rank",
     "rfquery-route",
     "rfquery-store",
     "rfquery-rerank"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfquery-failed"
     ]
    ],
    "z": "rfquery-tab",
    "x": 340,
    "y": 380
   },
   {
    "id": "rfquery-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rfquery-out"
     ]
    ],
    "z": "rfquery-tab",
    "x": 540,
    "y": 380
   }
  ]
 },
 {
  "id": "rag-stage-answer",
  "kind": "flow",
  "name": "RAG stage (answer)",
  "description": "RedForge RAG pipeline, role answer over MQTT (redforge/ingest/{instance}): runs respond and publishes each answer to the next stage named in metadata.pipeline, or to its replyTo (docs/agents.md)",
  "entry": [
   "MQTT redforge/ingest/{instance}"
  ],
  "params": [
   {
    "name": "CHAT_API",
    "description": "`ollama` (/api/...) or `openai` (/v1/...): the API the model server speaks",
    "default": "ollama",
    "required": false,
    "secret": false
   },
   {
    "name": "CHAT_API_KEY",
    "description": "sent as Authorization: Bearer",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "CHAT_MODEL",
    "description": "the chat model",
    "default": "llama3.2 (ollama), gpt-4o-mini (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "CHAT_SYSTEM_PROMPT",
    "description": "the system message",
    "default": "Answer the question from the context only. If the context does not hold the answer, say so.",
    "required": false,
    "secret": false
   },
   {
    "name": "CHAT_URL",
    "description": "the model server's root URL (a trailing /v1 is accepted)",
    "default": "http://127.0.0.1:11434 (ollama), https://api.openai.com (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_BACKOFF_MS",
    "description": "first wait before a retry; doubles, capped at 30 s",
    "default": "500",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_MAX_ATTEMPTS",
    "description": "model calls per message before giving up",
    "default": "3",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_TIMEOUT_MS",
    "description": "per model call",
    "default": "60000",
    "required": false,
    "secret": false
   },
   {
    "name": "REDFORGE_INSTANCE_ID",
    "description": "this instance's id (named in a RAG stage's trail); set by the bridge",
    "default": "set by the bridge",
    "required": false,
    "secret": false
   },
   {
    "name": "REDFORGE_MQTT_URL",
    "description": "the cluster's MQTT bus (RAG stage flows publish the next stage's work there); set by the bridge on every managed instance",
    "default": "set by the bridge",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfraganswer-tab",
    "type": "tab",
    "label": "RedForge · RAG stage (answer)",
    "disabled": false,
    "info": "RedForge RAG pipeline, role answer over MQTT (redforge/ingest/{instance}): runs respond and publishes each answer to the next stage named in metadata.pipeline, or to its replyTo (docs/agents.md)"
   },
   {
    "id": "rfraganswer-gate",
    "type": "redforge-gate",
    "name": "entry (MQTT)",
    "source": "mqtt",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfraganswer-route"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfraganswer-route",
    "type": "function",
    "name": "route (metadata.pipeline)",
    "func": "// metadata.pipeline is the message's route (docs/agents.md \"RAG pipeline over MQTT\").\nconst STAGES = [\"respond\"];\nconst KNOWN = [\"convert\",\"chunk\",\"embed\",\"store\",\"retrieve\",\"respond\"];\nconst REPLY = /^redforge\\/pipeline\\/[^/+#\\u0000]{1,128}\\/replies$/;\nconst ID = /^[^/+#\\u0000]{1,128}$/;\nconst out = new Array(STAGES.length + 2).fill(null);\nconst m = msg.payload && typeof msg.payload === \"object\" ? msg.payload.metadata : undefined;\nconst p = m && m.pipeline;\nif (!p || typeof p.replyTo !== \"string\" || !REPLY.test(p.replyTo)) {\n  node.warn(\"not a RAG pipeline message (no metadata.pipeline.replyTo under redforge/pipeline/): dropped\");\n  out[STAGES.length + 1] = msg;\n  return out;\n}\nconst next = Array.isArray(p.next) ? p.next : [];\nconst trail = Array.isArray(p.trail) ? p.trail.slice(-12) : [];\nconst badHop = next.length > 12 - 1 || !next.every((h) => h && KNOWN.includes(h.stage) && typeof h.instance === \"string\" && ID.test(h.instance));\nmsg.pipeline = { stage: String(p.stage), next: badHop ? [] : next, replyTo: p.replyTo, trail, received: Date.now() };\nconst i = STAGES.indexOf(p.stage);\nif (i >= 0 && !badHop) {\n  out[i] = msg;\n  return out;\n}\nmsg.payload = {\n  payload: null,\n  metadata: { flowId: typeof m.flowId === \"string\" && m.flowId ? m.flowId : \"unknown\", timestamp: new Date().toISOString(), source: \"rag-stage-answer\", contentType: \"json\", status: \"error\" },\n  error: { code: \"invalid_input\", message: badHop\n    ? \"metadata.pipeline.next must be at most 11 hops of {stage: \" + KNOWN.join(\"|\") + \", instance}\"\n    : \"this instance (role answer) runs stages \" + STAGES.join(\", \") + \", not \" + JSON.stringify(p.stage) },\n};\nout[STAGES.length] = msg;\nreturn out;",
    "outputs": 3,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfraganswer-respond-in"
     ],
     [
      "rfraganswer-exit"
     ],
     [
      "rfraganswer-drop"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfraganswer-drop",
    "type": "function",
    "name": "not a pipeline message",
    "func": "return null;",
    "outputs": 0,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [],
    "z": "rfraganswer-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfraganswer-respond-in",
    "type": "redforge-message",
    "name": "respond: read msg_input",
    "mode": "input",
    "source": "response-generation",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfraganswer-respond-request"
     ],
     [
      "rfraganswer-exit"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfraganswer-respond-request",
    "type": "function",
    "name": "chat request",
    "func": "const api = String(env.get(\"CHAT_API\") || \"ollama\").toLowerCase();\nif (api !== \"ollama\" && api !== \"openai\") {\n  msg.agent.error = { code: \"invalid_input\", message: \"CHAT_API must be ollama or openai, not \" + api };\n  return [null, msg];\n}\nconst root = String(env.get(\"CHAT_URL\") || (api === \"openai\" ? \"https://api.openai.com\" : \"http://127.0.0.1:11434\")).replace(/\\/+$/, \"\").replace(/\\/v1$/, \"\");\nconst model = String(msg.agent.config.model || env.get(\"CHAT_MODEL\") || (api === \"openai\" ? \"gpt-4o-mini\" : \"llama3.2\"));\nconst headers = { \"content-type\": \"application/json\" };\nif (env.get(\"CHAT_API_KEY\")) headers.authorization = \"Bearer \" + env.get(\"CHAT_API_KEY\");\nconst p = typeof msg.payload === \"string\" ? { question: msg.payload } : msg.payload;\nconst context = p && p.context === undefined ? [] : p && p.context;\nconst texts = Array.isArray(context) ? context.map((c) => typeof c === \"string\" ? c : c && typeof c.text === \"string\" ? c.text : null) : null;\nif (!p || typeof p.question !== \"string\" || p.question.trim() === \"\" || !texts || texts.some((t) => t === null)) {\n  msg.agent.error = { code: \"invalid_input\", message: \"payload must be a question, or {question, context} with context texts or chunks [{text}]\" };\n  return [null, msg];\n}\nconst system = String(msg.agent.config.systemPrompt || env.get(\"CHAT_SYSTEM_PROMPT\") || \"Answer the question from the context only. If the context does not hold the answer, say so.\");\nconst user = (texts.length ? \"Context:\\n\" + texts.join(\"\\n\\n\") + \"\\n\\n\" : \"\") + \"Question: \" + p.question.trim();\nconst messages = [{ role: \"system\", content: system }, { role: \"user\", content: user }];\nconst body = { model: model, messages: messages, stream: false };\nconst temperature = msg.agent.config.temperature !== undefined ? Number(msg.agent.config.temperature) : undefined;\nif (temperature !== undefined && Number.isFinite(temperature)) {\n  if (api === \"openai\") body.temperature = temperature; else body.options = { temperature: temperature };\n}\nmsg.agent.request = { api: api, model: model, url: root + (api === \"openai\" ? \"/v1/chat/completions\" : \"/api/chat\"), headers: headers, body: body, prompt: user };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfraganswer-respond-call"
     ],
     [
      "rfraganswer-respond-out"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfraganswer-respond-call",
    "type": "redforge-model-policy",
    "name": "approved model?",
    "outputs": 2,
    "wires": [
     [
      "rfraganswer-respond-attempt"
     ],
     [
      "rfraganswer-respond-blocked"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfraganswer-respond-blocked",
    "type": "redforge-ai-audit",
    "name": "report blocked call",
    "property": "aiDecision",
    "wires": [
     [
      "rfraganswer-respond-out"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfraganswer-respond-attempt",
    "type": "function",
    "name": "call model",
    "func": "const r = msg.agent.request;\nmsg.agent.attempts = (msg.agent.attempts || 0) + 1;\nmsg.agent.callStarted = Date.now();\nmsg.url = r.url;\nmsg.method = \"POST\";\nmsg.headers = Object.assign({}, r.headers);\nmsg.payload = r.body;\nmsg.requestTimeout = Number(env.get(\"MODEL_TIMEOUT_MS\")) || 60000;\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfraganswer-respond-http"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfraganswer-respond-http",
    "type": "http request",
    "name": "model endpoint",
    "method": "use",
    "ret": "obj",
    "paytoqs": "ignore",
    "url": "",
    "tls": "",
    "persist": false,
    "proxy": "",
    "insecureHTTPParser": false,
    "authType": "",
    "senderr": false,
    "headers": [],
    "wires": [
     [
      "rfraganswer-respond-check"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfraganswer-respond-check",
    "type": "function",
    "name": "answered?",
    "func": "const a = msg.agent;\nconst code = msg.statusCode;\nconst max = Number(env.get(\"MODEL_MAX_ATTEMPTS\")) || 3;\nconst first = Number(env.get(\"MODEL_BACKOFF_MS\")) || 500;\nconst ok = typeof code === \"number\" && code >= 200 && code < 300;\nif (ok && msg.payload && typeof msg.payload === \"object\") {\n  node.status({});\n  return [msg, null, null];\n}\nconst what = ok ? \"an answer that is not JSON\" : typeof code === \"number\" ? \"HTTP \" + code : String(msg.payload).slice(0, 300);\nconst transient = !ok && (typeof code !== \"number\" || code === 408 || code === 429 || code >= 500);\nconst failCode = ok ? \"model_bad_answer\" : transient ? \"model_unavailable\" : \"model_rejected\";\nif (transient && a.attempts < max) {\n  msg.delay = Math.min(first * Math.pow(2, a.attempts - 1), 30000);\n  node.status({ fill: \"yellow\", shape: \"ring\", text: \"retry \" + (a.attempts + 1) + \"/\" + max + \" in \" + msg.delay + \" ms\" });\n  return [null, msg, null];\n}\nnode.status({ fill: \"red\", shape: \"dot\", text: what.slice(0, 40) });\na.error = {\n  code: failCode,\n  message: a.request.url + \" gave \" + what + \" (attempt \" + a.attempts + \" of \" + max + \")\",\n  attempts: a.attempts,\n};\nreturn [null, null, msg];",
    "outputs": 3,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfraganswer-respond-read"
     ],
     [
      "rfraganswer-respond-backoff"
     ],
     [
      "rfraganswer-respond-dlq"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 740,
    "y": 180
   },
   {
    "id": "rfraganswer-respond-backoff",
    "type": "delay",
    "name": "back off",
    "pauseType": "delayv",
    "timeout": "1",
    "timeoutUnits": "seconds",
    "rate": "1",
    "nbRateUnits": "1",
    "rateUnits": "second",
    "randomFirst": "1",
    "randomLast": "5",
    "randomUnits": "seconds",
    "drop": false,
    "allowrate": false,
    "outputs": 1,
    "wires": [
     [
      "rfraganswer-respond-attempt"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 940,
    "y": 180
   },
   {
    "id": "rfraganswer-respond-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "response-generation",
    "wires": [
     [
      "rfraganswer-respond-out"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 1140,
    "y": 180
   },
   {
    "id": "rfraganswer-respond-read",
    "type": "function",
    "name": "read answer",
    "func": "const r = msg.payload;\nconst api = msg.agent.request.api;\nconst choice = api === \"openai\" && Array.isArray(r.choices) ? r.choices[0] : undefined;\nconst answer = api === \"openai\" ? choice && choice.message && choice.message.content : r.message && r.message.content;\nif (typeof answer !== \"string\") {\n  msg.agent.error = { code: \"model_bad_answer\", message: \"no answer text from \" + msg.agent.request.url, attempts: msg.agent.attempts };\n  return [null, msg];\n}\nconst inputTokens = api === \"openai\" ? r.usage && r.usage.prompt_tokens : r.prompt_eval_count;\nconst outputTokens = api === \"openai\" ? r.usage && r.usage.completion_tokens : r.eval_count;\nconst finishReason = api === \"openai\" ? choice.finish_reason : r.done_reason;\nmsg.aiDecision = Object.assign({\n  provider: msg.agent.request.api === \"openai\" ? \"openai\" : \"ollama\",\n  model: msg.agent.request.model,\n  operationName: \"chat\",\n  latencyMs: Date.now() - msg.agent.callStarted,\n  metadata: { flowId: msg.agent.flowId, attempts: msg.agent.attempts },\n}, { responseModel: r.model, responseId: r.id, prompt: msg.agent.request.prompt, response: answer, inputTokens: inputTokens, outputTokens: outputTokens, finishReason: finishReason });\nmsg.payload = { answer: answer, model: r.model || msg.agent.request.model, inputTokens: inputTokens, outputTokens: outputTokens, finishReason: finishReason };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfraganswer-respond-audit"
     ],
     [
      "rfraganswer-respond-out"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 140,
    "y": 280
   },
   {
    "id": "rfraganswer-respond-audit",
    "type": "redforge-ai-audit",
    "name": "report model call",
    "property": "aiDecision",
    "wires": [
     [
      "rfraganswer-respond-out"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 340,
    "y": 280
   },
   {
    "id": "rfraganswer-respond-out",
    "type": "redforge-message",
    "name": "respond: build msg_output",
    "mode": "output",
    "source": "response-generation",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfraganswer-exit"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 540,
    "y": 280
   },
   {
    "id": "rfraganswer-respond-catch",
    "type": "catch",
    "name": "respond: unexpected failure",
    "scope": [
     "rfraganswer-respond-request",
     "rfraganswer-respond-call",
     "rfraganswer-respond-attempt",
     "rfraganswer-respond-check",
     "rfraganswer-respond-read"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfraganswer-respond-failed"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 740,
    "y": 280
   },
   {
    "id": "rfraganswer-respond-failed",
    "type": "function",
    "name": "internal_error",
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfraganswer-respond-out"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 940,
    "y": 280
   },
   {
    "id": "rfraganswer-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfraganswer-forward"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 1140,
    "y": 280
   },
   {
    "id": "rfraganswer-forward",
    "type": "function",
    "name": "next stage or reply",
    "func": "const out = msg.payload;\nconst p = msg.pipeline;\nconst me = env.get(\"REDFORGE_INSTANCE_ID\") || \"\";\nconst trail = p.trail.concat([{ stage: p.stage, instance: me, received: p.received, answered: Date.now() }]);\nconst hop = p.next[0];\nif (out && out.metadata && out.metadata.status === \"success\" && hop) {\n  let payload = out.payload;\n  let contentType = out.metadata.contentType;\n  // The one reshaping of the chain: retrieval's answer is response generation's {question, context}.\n  if (p.stage === \"retrieve\" && hop.stage === \"respond\") {\n    payload = { question: out.payload.query, context: out.payload.results };\n    contentType = \"json\";\n  }\n  msg.topic = \"redforge/ingest/{instance}\".replace(\"{instance}\", hop.instance);\n  msg.payload = {\n    payload,\n    metadata: { flowId: out.metadata.flowId, timestamp: new Date().toISOString(), source: out.metadata.source, contentType, status: \"success\",\n      pipeline: { stage: hop.stage, next: p.next.slice(1), replyTo: p.replyTo, trail } },\n  };\n  if (out.config) msg.payload.config = out.config;\n} else {\n  msg.topic = p.replyTo;\n  out.metadata.pipeline = { stage: p.stage, instance: me, trail };\n  msg.payload = out;\n}\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfraganswer-publish"
     ]
    ],
    "z": "rfraganswer-tab",
    "x": 140,
    "y": 380
   },
   {
    "id": "rfraganswer-publish",
    "type": "mqtt out",
    "name": "next stage / reply",
    "topic": "",
    "qos": "1",
    "retain": "false",
    "respTopic": "",
    "contentType": "",
    "userProps": "",
    "correl": "",
    "expiry": "",
    "broker": "rfraganswer-bus",
    "wires": [],
    "z": "rfraganswer-tab",
    "x": 340,
    "y": 380
   },
   {
    "id": "rfraganswer-bus",
    "type": "mqtt-broker",
    "name": "cluster bus (REDFORGE_MQTT_URL)",
    "broker": "${REDFORGE_MQTT_URL}",
    "port": "",
    "clientid": "",
    "autoConnect": true,
    "usetls": false,
    "protocolVersion": "4",
    "keepalive": "60",
    "cleansession": true,
    "autoUnsubscribe": true,
    "birthTopic": "",
    "birthQos": "0",
    "birthRetain": "false",
    "birthPayload": "",
    "birthMsg": {},
    "closeTopic": "",
    "closeQos": "0",
    "closeRetain": "false",
    "closePayload": "",
    "closeMsg": {},
    "willTopic": "",
    "willQos": "0",
    "willRetain": "false",
    "willPayload": "",
    "willMsg": {},
    "userProps": "",
    "sessionExpiry": ""
   }
  ]
 },
 {
  "id": "rag-stage-embed",
  "kind": "flow",
  "name": "RAG stage (embed)",
  "description": "RedForge RAG pipeline, role embed over MQTT (redforge/ingest/{instance}): runs embed and publishes each answer to the next stage named in metadata.pipeline, or to its replyTo (docs/agents.md)",
  "entry": [
   "MQTT redforge/ingest/{instance}"
  ],
  "params": [
   {
    "name": "EMBED_API",
    "description": "`ollama` (/api/...) or `openai` (/v1/...): the API the model server speaks",
    "default": "ollama",
    "required": false,
    "secret": false
   },
   {
    "name": "EMBED_API_KEY",
    "description": "sent as Authorization: Bearer",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "EMBED_DIMENSIONS",
    "description": "dimensions to ask the model for (optional)",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "EMBED_MODEL",
    "description": "the embedding model",
    "default": "nomic-embed-text (ollama), text-embedding-3-small (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "EMBED_URL",
    "description": "the model server's root URL (a trailing /v1 is accepted)",
    "default": "http://127.0.0.1:11434 (ollama), https://api.openai.com (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_BACKOFF_MS",
    "description": "first wait before a retry; doubles, capped at 30 s",
    "default": "500",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_MAX_ATTEMPTS",
    "description": "model calls per message before giving up",
    "default": "3",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_TIMEOUT_MS",
    "description": "per model call",
    "default": "60000",
    "required": false,
    "secret": false
   },
   {
    "name": "REDFORGE_INSTANCE_ID",
    "description": "this instance's id (named in a RAG stage's trail); set by the bridge",
    "default": "set by the bridge",
    "required": false,
    "secret": false
   },
   {
    "name": "REDFORGE_MQTT_URL",
    "description": "the cluster's MQTT bus (RAG stage flows publish the next stage's work there); set by the bridge on every managed instance",
    "default": "set by the bridge",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfragembed-tab",
    "type": "tab",
    "label": "RedForge · RAG stage (embed)",
    "disabled": false,
    "info": "RedForge RAG pipeline, role embed over MQTT (redforge/ingest/{instance}): runs embed and publishes each answer to the next stage named in metadata.pipeline, or to its replyTo (docs/agents.md)"
   },
   {
    "id": "rfragembed-gate",
    "type": "redforge-gate",
    "name": "entry (MQTT)",
    "source": "mqtt",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfragembed-route"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfragembed-route",
    "type": "function",
    "name": "route (metadata.pipeline)",
    "func": "// metadata.pipeline is the message's route (docs/agents.md \"RAG pipeline over MQTT\").\nconst STAGES = [\"embed\"];\nconst KNOWN = [\"convert\",\"chunk\",\"embed\",\"store\",\"retrieve\",\"respond\"];\nconst REPLY = /^redforge\\/pipeline\\/[^/+#\\u0000]{1,128}\\/replies$/;\nconst ID = /^[^/+#\\u0000]{1,128}$/;\nconst out = new Array(STAGES.length + 2).fill(null);\nconst m = msg.payload && typeof msg.payload === \"object\" ? msg.payload.metadata : undefined;\nconst p = m && m.pipeline;\nif (!p || typeof p.replyTo !== \"string\" || !REPLY.test(p.replyTo)) {\n  node.warn(\"not a RAG pipeline message (no metadata.pipeline.replyTo under redforge/pipeline/): dropped\");\n  out[STAGES.length + 1] = msg;\n  return out;\n}\nconst next = Array.isArray(p.next) ? p.next : [];\nconst trail = Array.isArray(p.trail) ? p.trail.slice(-12) : [];\nconst badHop = next.length > 12 - 1 || !next.every((h) => h && KNOWN.includes(h.stage) && typeof h.instance === \"string\" && ID.test(h.instance));\nmsg.pipeline = { stage: String(p.stage), next: badHop ? [] : next, replyTo: p.replyTo, trail, received: Date.now() };\nconst i = STAGES.indexOf(p.stage);\nif (i >= 0 && !badHop) {\n  out[i] = msg;\n  return out;\n}\nmsg.payload = {\n  payload: null,\n  metadata: { flowId: typeof m.flowId === \"string\" && m.flowId ? m.flowId : \"unknown\", timestamp: new Date().toISOString(), source: \"rag-stage-embed\", contentType: \"json\", status: \"error\" },\n  error: { code: \"invalid_input\", message: badHop\n    ? \"metadata.pipeline.next must be at most 11 hops of {stage: \" + KNOWN.join(\"|\") + \", instance}\"\n    : \"this instance (role embed) runs stages \" + STAGES.join(\", \") + \", not \" + JSON.stringify(p.stage) },\n};\nout[STAGES.length] = msg;\nreturn out;",
    "outputs": 3,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragembed-embed-in"
     ],
     [
      "rfragembed-exit"
     ],
     [
      "rfragembed-drop"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfragembed-drop",
    "type": "function",
    "name": "not a pipeline message",
    "func": "return null;",
    "outputs": 0,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [],
    "z": "rfragembed-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfragembed-embed-in",
    "type": "redforge-message",
    "name": "embed: read msg_input",
    "mode": "input",
    "source": "embeddings",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfragembed-embed-request"
     ],
     [
      "rfragembed-exit"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfragembed-embed-request",
    "type": "function",
    "name": "embedding request",
    "func": "const api = String(env.get(\"EMBED_API\") || \"ollama\").toLowerCase();\nif (api !== \"ollama\" && api !== \"openai\") {\n  msg.agent.error = { code: \"invalid_input\", message: \"EMBED_API must be ollama or openai, not \" + api };\n  return [null, msg];\n}\nconst root = String(env.get(\"EMBED_URL\") || (api === \"openai\" ? \"https://api.openai.com\" : \"http://127.0.0.1:11434\")).replace(/\\/+$/, \"\").replace(/\\/v1$/, \"\");\nconst model = String(msg.agent.config.model || env.get(\"EMBED_MODEL\") || (api === \"openai\" ? \"text-embedding-3-small\" : \"nomic-embed-text\"));\nconst headers = { \"content-type\": \"application/json\" };\nif (env.get(\"EMBED_API_KEY\")) headers.authorization = \"Bearer \" + env.get(\"EMBED_API_KEY\");\nconst items = typeof msg.payload === \"string\" ? [msg.payload] : msg.payload;\nconst texts = Array.isArray(items) ? items.map((i) => typeof i === \"string\" ? i : i && typeof i.text === \"string\" ? i.text : null) : null;\nif (!texts || texts.length === 0 || texts.some((t) => t === null || t.length === 0)) {\n  msg.agent.error = { code: \"invalid_input\", message: \"payload must be a text, an array of texts, or chunks [{text}], none empty\" };\n  return [null, msg];\n}\nmsg.agent.items = items;\nconst dimensions = Number(msg.agent.config.dimensions || env.get(\"EMBED_DIMENSIONS\")) || undefined;\nconst body = { model: model, input: texts };\nif (dimensions) body.dimensions = dimensions;\nmsg.agent.request = { api: api, model: model, url: root + (api === \"openai\" ? \"/v1/embeddings\" : \"/api/embed\"), headers: headers, body: body };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragembed-embed-call"
     ],
     [
      "rfragembed-embed-out"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfragembed-embed-call",
    "type": "redforge-model-policy",
    "name": "approved model?",
    "outputs": 2,
    "wires": [
     [
      "rfragembed-embed-attempt"
     ],
     [
      "rfragembed-embed-blocked"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfragembed-embed-blocked",
    "type": "redforge-ai-audit",
    "name": "report blocked call",
    "property": "aiDecision",
    "wires": [
     [
      "rfragembed-embed-out"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfragembed-embed-attempt",
    "type": "function",
    "name": "call model",
    "func": "const r = msg.agent.request;\nmsg.agent.attempts = (msg.agent.attempts || 0) + 1;\nmsg.agent.callStarted = Date.now();\nmsg.url = r.url;\nmsg.method = \"POST\";\nmsg.headers = Object.assign({}, r.headers);\nmsg.payload = r.body;\nmsg.requestTimeout = Number(env.get(\"MODEL_TIMEOUT_MS\")) || 60000;\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragembed-embed-http"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfragembed-embed-http",
    "type": "http request",
    "name": "model endpoint",
    "method": "use",
    "ret": "obj",
    "paytoqs": "ignore",
    "url": "",
    "tls": "",
    "persist": false,
    "proxy": "",
    "insecureHTTPParser": false,
    "authType": "",
    "senderr": false,
    "headers": [],
    "wires": [
     [
      "rfragembed-embed-check"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfragembed-embed-check",
    "type": "function",
    "name": "answered?",
    "func": "const a = msg.agent;\nconst code = msg.statusCode;\nconst max = Number(env.get(\"MODEL_MAX_ATTEMPTS\")) || 3;\nconst first = Number(env.get(\"MODEL_BACKOFF_MS\")) || 500;\nconst ok = typeof code === \"number\" && code >= 200 && code < 300;\nif (ok && msg.payload && typeof msg.payload === \"object\") {\n  node.status({});\n  return [msg, null, null];\n}\nconst what = ok ? \"an answer that is not JSON\" : typeof code === \"number\" ? \"HTTP \" + code : String(msg.payload).slice(0, 300);\nconst transient = !ok && (typeof code !== \"number\" || code === 408 || code === 429 || code >= 500);\nconst failCode = ok ? \"model_bad_answer\" : transient ? \"model_unavailable\" : \"model_rejected\";\nif (transient && a.attempts < max) {\n  msg.delay = Math.min(first * Math.pow(2, a.attempts - 1), 30000);\n  node.status({ fill: \"yellow\", shape: \"ring\", text: \"retry \" + (a.attempts + 1) + \"/\" + max + \" in \" + msg.delay + \" ms\" });\n  return [null, msg, null];\n}\nnode.status({ fill: \"red\", shape: \"dot\", text: what.slice(0, 40) });\na.error = {\n  code: failCode,\n  message: a.request.url + \" gave \" + what + \" (attempt \" + a.attempts + \" of \" + max + \")\",\n  attempts: a.attempts,\n};\nreturn [null, null, msg];",
    "outputs": 3,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragembed-embed-read"
     ],
     [
      "rfragembed-embed-backoff"
     ],
     [
      "rfragembed-embed-dlq"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 740,
    "y": 180
   },
   {
    "id": "rfragembed-embed-backoff",
    "type": "delay",
    "name": "back off",
    "pauseType": "delayv",
    "timeout": "1",
    "timeoutUnits": "seconds",
    "rate": "1",
    "nbRateUnits": "1",
    "rateUnits": "second",
    "randomFirst": "1",
    "randomLast": "5",
    "randomUnits": "seconds",
    "drop": false,
    "allowrate": false,
    "outputs": 1,
    "wires": [
     [
      "rfragembed-embed-attempt"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 940,
    "y": 180
   },
   {
    "id": "rfragembed-embed-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "embeddings",
    "wires": [
     [
      "rfragembed-embed-out"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 1140,
    "y": 180
   },
   {
    "id": "rfragembed-embed-read",
    "type": "function",
    "name": "read vectors",
    "func": "const r = msg.payload;\nconst api = msg.agent.request.api;\nconst vectors = api === \"openai\"\n  ? (Array.isArray(r.data) ? r.data.slice().sort((a, b) => a.index - b.index).map((d) => d.embedding) : null)\n  : r.embeddings;\nconst items = msg.agent.items;\nif (!Array.isArray(vectors) || vectors.length !== items.length || !vectors.every((v) => Array.isArray(v) && v.length > 0)) {\n  msg.agent.error = { code: \"model_bad_answer\", message: \"expected \" + items.length + \" vector(s) from \" + msg.agent.request.url, attempts: msg.agent.attempts };\n  return [null, msg];\n}\nconst inputTokens = api === \"openai\" ? (r.usage && r.usage.prompt_tokens) : r.prompt_eval_count;\nmsg.aiDecision = Object.assign({\n  provider: msg.agent.request.api === \"openai\" ? \"openai\" : \"ollama\",\n  model: msg.agent.request.model,\n  operationName: \"embeddings\",\n  latencyMs: Date.now() - msg.agent.callStarted,\n  metadata: { flowId: msg.agent.flowId, attempts: msg.agent.attempts },\n}, { responseModel: r.model, inputTokens: inputTokens, outputTokens: 0, prompt: msg.agent.request.body.input.join(\"\\n\\n\") });\nmsg.payload = items.map((item, index) => Object.assign(typeof item === \"string\" ? { index: index, text: item } : Object.assign({ index: index }, item), { embedding: vectors[index] }));\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragembed-embed-audit"
     ],
     [
      "rfragembed-embed-out"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 140,
    "y": 280
   },
   {
    "id": "rfragembed-embed-audit",
    "type": "redforge-ai-audit",
    "name": "report model call",
    "property": "aiDecision",
    "wires": [
     [
      "rfragembed-embed-out"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 340,
    "y": 280
   },
   {
    "id": "rfragembed-embed-out",
    "type": "redforge-message",
    "name": "embed: build msg_output",
    "mode": "output",
    "source": "embeddings",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfragembed-exit"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 540,
    "y": 280
   },
   {
    "id": "rfragembed-embed-catch",
    "type": "catch",
    "name": "embed: unexpected failure",
    "scope": [
     "rfragembed-embed-request",
     "rfragembed-embed-call",
     "rfragembed-embed-attempt",
     "rfragembed-embed-check",
     "rfragembed-embed-read"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfragembed-embed-failed"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 740,
    "y": 280
   },
   {
    "id": "rfragembed-embed-failed",
    "type": "function",
    "name": "internal_error",
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragembed-embed-out"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 940,
    "y": 280
   },
   {
    "id": "rfragembed-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfragembed-forward"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 1140,
    "y": 280
   },
   {
    "id": "rfragembed-forward",
    "type": "function",
    "name": "next stage or reply",
    "func": "const out = msg.payload;\nconst p = msg.pipeline;\nconst me = env.get(\"REDFORGE_INSTANCE_ID\") || \"\";\nconst trail = p.trail.concat([{ stage: p.stage, instance: me, received: p.received, answered: Date.now() }]);\nconst hop = p.next[0];\nif (out && out.metadata && out.metadata.status === \"success\" && hop) {\n  let payload = out.payload;\n  let contentType = out.metadata.contentType;\n  // The one reshaping of the chain: retrieval's answer is response generation's {question, context}.\n  if (p.stage === \"retrieve\" && hop.stage === \"respond\") {\n    payload = { question: out.payload.query, context: out.payload.results };\n    contentType = \"json\";\n  }\n  msg.topic = \"redforge/ingest/{instance}\".replace(\"{instance}\", hop.instance);\n  msg.payload = {\n    payload,\n    metadata: { flowId: out.metadata.flowId, timestamp: new Date().toISOString(), source: out.metadata.source, contentType, status: \"success\",\n      pipeline: { stage: hop.stage, next: p.next.slice(1), replyTo: p.replyTo, trail } },\n  };\n  if (out.config) msg.payload.config = out.config;\n} else {\n  msg.topic = p.replyTo;\n  out.metadata.pipeline = { stage: p.stage, instance: me, trail };\n  msg.payload = out;\n}\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragembed-publish"
     ]
    ],
    "z": "rfragembed-tab",
    "x": 140,
    "y": 380
   },
   {
    "id": "rfragembed-publish",
    "type": "mqtt out",
    "name": "next stage / reply",
    "topic": "",
    "qos": "1",
    "retain": "false",
    "respTopic": "",
    "contentType": "",
    "userProps": "",
    "correl": "",
    "expiry": "",
    "broker": "rfragembed-bus",
    "wires": [],
    "z": "rfragembed-tab",
    "x": 340,
    "y": 380
   },
   {
    "id": "rfragembed-bus",
    "type": "mqtt-broker",
    "name": "cluster bus (REDFORGE_MQTT_URL)",
    "broker": "${REDFORGE_MQTT_URL}",
    "port": "",
    "clientid": "",
    "autoConnect": true,
    "usetls": false,
    "protocolVersion": "4",
    "keepalive": "60",
    "cleansession": true,
    "autoUnsubscribe": true,
    "birthTopic": "",
    "birthQos": "0",
    "birthRetain": "false",
    "birthPayload": "",
    "birthMsg": {},
    "closeTopic": "",
    "closeQos": "0",
    "closeRetain": "false",
    "closePayload": "",
    "closeMsg": {},
    "willTopic": "",
    "willQos": "0",
    "willRetain": "false",
    "willPayload": "",
    "willMsg": {},
    "userProps": "",
    "sessionExpiry": ""
   }
  ]
 },
 {
  "id": "rag-stage-ingest",
  "kind": "flow",
  "name": "RAG stage (ingest)",
  "description": "RedForge RAG pipeline, role ingest over MQTT (redforge/ingest/{instance}): runs convert, chunk and publishes each answer to the next stage named in metadata.pipeline, or to its replyTo (docs/agents.md)",
  "entry": [
   "MQTT redforge/ingest/{instance}"
  ],
  "params": [
   {
    "name": "CHUNK_OVERLAP",
    "description": "overlap in characters, less than the size",
    "default": "200",
    "required": false,
    "secret": false
   },
   {
    "name": "CHUNK_SIZE",
    "description": "chunk size in characters (at most 100,000)",
    "default": "1000",
    "required": false,
    "secret": false
   },
   {
    "name": "CONVERT_MAX_BYTES",
    "description": "largest document accepted",
    "default": "20971520",
    "required": false,
    "secret": false
   },
   {
    "name": "REDFORGE_INSTANCE_ID",
    "description": "this instance's id (named in a RAG stage's trail); set by the bridge",
    "default": "set by the bridge",
    "required": false,
    "secret": false
   },
   {
    "name": "REDFORGE_MQTT_URL",
    "description": "the cluster's MQTT bus (RAG stage flows publish the next stage's work there); set by the bridge on every managed instance",
    "default": "set by the bridge",
    "required": false,
    "secret": false
   },
   {
    "name": "TIKA_TIMEOUT_MS",
    "description": "per Tika call",
    "default": "60000",
    "required": false,
    "secret": false
   },
   {
    "name": "TIKA_URL",
    "description": "an Apache Tika server; when set, documents are converted by PUT {TIKA_URL}/tika, else by the built-in PDF/DOCX/text readers",
    "default": null,
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfragingest-tab",
    "type": "tab",
    "label": "RedForge · RAG stage (ingest)",
    "disabled": false,
    "info": "RedForge RAG pipeline, role ingest over MQTT (redforge/ingest/{instance}): runs convert, chunk and publishes each answer to the next stage named in metadata.pipeline, or to its replyTo (docs/agents.md)"
   },
   {
    "id": "rfragingest-gate",
    "type": "redforge-gate",
    "name": "entry (MQTT)",
    "source": "mqtt",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfragingest-route"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfragingest-route",
    "type": "function",
    "name": "route (metadata.pipeline)",
    "func": "// metadata.pipeline is the message's route (docs/agents.md \"RAG pipeline over MQTT\").\nconst STAGES = [\"convert\",\"chunk\"];\nconst KNOWN = [\"convert\",\"chunk\",\"embed\",\"store\",\"retrieve\",\"respond\"];\nconst REPLY = /^redforge\\/pipeline\\/[^/+#\\u0000]{1,128}\\/replies$/;\nconst ID = /^[^/+#\\u0000]{1,128}$/;\nconst out = new Array(STAGES.length + 2).fill(null);\nconst m = msg.payload && typeof msg.payload === \"object\" ? msg.payload.metadata : undefined;\nconst p = m && m.pipeline;\nif (!p || typeof p.replyTo !== \"string\" || !REPLY.test(p.replyTo)) {\n  node.warn(\"not a RAG pipeline message (no metadata.pipeline.replyTo under redforge/pipeline/): dropped\");\n  out[STAGES.length + 1] = msg;\n  return out;\n}\nconst next = Array.isArray(p.next) ? p.next : [];\nconst trail = Array.isArray(p.trail) ? p.trail.slice(-12) : [];\nconst badHop = next.length > 12 - 1 || !next.every((h) => h && KNOWN.includes(h.stage) && typeof h.instance === \"string\" && ID.test(h.instance));\nmsg.pipeline = { stage: String(p.stage), next: badHop ? [] : next, replyTo: p.replyTo, trail, received: Date.now() };\nconst i = STAGES.indexOf(p.stage);\nif (i >= 0 && !badHop) {\n  out[i] = msg;\n  return out;\n}\nmsg.payload = {\n  payload: null,\n  metadata: { flowId: typeof m.flowId === \"string\" && m.flowId ? m.flowId : \"unknown\", timestamp: new Date().toISOString(), source: \"rag-stage-ingest\", contentType: \"json\", status: \"error\" },\n  error: { code: \"invalid_input\", message: badHop\n    ? \"metadata.pipeline.next must be at most 11 hops of {stage: \" + KNOWN.join(\"|\") + \", instance}\"\n    : \"this instance (role ingest) runs stages \" + STAGES.join(\", \") + \", not \" + JSON.stringify(p.stage) },\n};\nout[STAGES.length] = msg;\nreturn out;",
    "outputs": 4,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragingest-convert-in"
     ],
     [
      "rfragingest-chunk-in"
     ],
     [
      "rfragingest-exit"
     ],
     [
      "rfragingest-drop"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfragingest-drop",
    "type": "function",
    "name": "not a pipeline message",
    "func": "return null;",
    "outputs": 0,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [],
    "z": "rfragingest-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfragingest-convert-in",
    "type": "redforge-message",
    "name": "convert: read msg_input",
    "mode": "input",
    "source": "file-converter",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfragingest-convert-convert"
     ],
     [
      "rfragingest-exit"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfragingest-convert-convert",
    "type": "redforge-convert",
    "name": "convert to text",
    "tikaUrl": "${TIKA_URL}",
    "maxBytes": "${CONVERT_MAX_BYTES}",
    "timeout": "${TIKA_TIMEOUT_MS}",
    "wires": [
     [
      "rfragingest-convert-out"
     ],
     [
      "rfragingest-convert-dlq"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfragingest-convert-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "file-converter",
    "wires": [
     [
      "rfragingest-convert-out"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfragingest-convert-out",
    "type": "redforge-message",
    "name": "convert: build msg_output",
    "mode": "output",
    "source": "file-converter",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfragingest-exit"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfragingest-convert-catch",
    "type": "catch",
    "name": "convert: unexpected failure",
    "scope": [
     "rfragingest-convert-convert"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfragingest-convert-failed"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfragingest-convert-failed",
    "type": "function",
    "name": "internal_error",
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragingest-convert-out"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfragingest-chunk-in",
    "type": "redforge-message",
    "name": "chunk: read msg_input",
    "mode": "input",
    "source": "text-chunking",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfragingest-chunk-chunk"
     ],
     [
      "rfragingest-exit"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 740,
    "y": 180
   },
   {
    "id": "rfragingest-chunk-chunk",
    "type": "redforge-chunk",
    "name": "chunk text",
    "size": "${CHUNK_SIZE}",
    "overlap": "${CHUNK_OVERLAP}",
    "wires": [
     [
      "rfragingest-chunk-out"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 940,
    "y": 180
   },
   {
    "id": "rfragingest-chunk-out",
    "type": "redforge-message",
    "name": "chunk: build msg_output",
    "mode": "output",
    "source": "text-chunking",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfragingest-exit"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 1140,
    "y": 180
   },
   {
    "id": "rfragingest-chunk-catch",
    "type": "catch",
    "name": "chunk: unexpected failure",
    "scope": [
     "rfragingest-chunk-chunk"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfragingest-chunk-failed"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 140,
    "y": 280
   },
   {
    "id": "rfragingest-chunk-failed",
    "type": "function",
    "name": "internal_error",
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragingest-chunk-out"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 340,
    "y": 280
   },
   {
    "id": "rfragingest-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfragingest-forward"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 540,
    "y": 280
   },
   {
    "id": "rfragingest-forward",
    "type": "function",
    "name": "next stage or reply",
    "func": "const out = msg.payload;\nconst p = msg.pipeline;\nconst me = env.get(\"REDFORGE_INSTANCE_ID\") || \"\";\nconst trail = p.trail.concat([{ stage: p.stage, instance: me, received: p.received, answered: Date.now() }]);\nconst hop = p.next[0];\nif (out && out.metadata && out.metadata.status === \"success\" && hop) {\n  let payload = out.payload;\n  let contentType = out.metadata.contentType;\n  // The one reshaping of the chain: retrieval's answer is response generation's {question, context}.\n  if (p.stage === \"retrieve\" && hop.stage === \"respond\") {\n    payload = { question: out.payload.query, context: out.payload.results };\n    contentType = \"json\";\n  }\n  msg.topic = \"redforge/ingest/{instance}\".replace(\"{instance}\", hop.instance);\n  msg.payload = {\n    payload,\n    metadata: { flowId: out.metadata.flowId, timestamp: new Date().toISOString(), source: out.metadata.source, contentType, status: \"success\",\n      pipeline: { stage: hop.stage, next: p.next.slice(1), replyTo: p.replyTo, trail } },\n  };\n  if (out.config) msg.payload.config = out.config;\n} else {\n  msg.topic = p.replyTo;\n  out.metadata.pipeline = { stage: p.stage, instance: me, trail };\n  msg.payload = out;\n}\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragingest-publish"
     ]
    ],
    "z": "rfragingest-tab",
    "x": 740,
    "y": 280
   },
   {
    "id": "rfragingest-publish",
    "type": "mqtt out",
    "name": "next stage / reply",
    "topic": "",
    "qos": "1",
    "retain": "false",
    "respTopic": "",
    "contentType": "",
    "userProps": "",
    "correl": "",
    "expiry": "",
    "broker": "rfragingest-bus",
    "wires": [],
    "z": "rfragingest-tab",
    "x": 940,
    "y": 280
   },
   {
    "id": "rfragingest-bus",
    "type": "mqtt-broker",
    "name": "cluster bus (REDFORGE_MQTT_URL)",
    "broker": "${REDFORGE_MQTT_URL}",
    "port": "",
    "clientid": "",
    "autoConnect": true,
    "usetls": false,
    "protocolVersion": "4",
    "keepalive": "60",
    "cleansession": true,
    "autoUnsubscribe": true,
    "birthTopic": "",
    "birthQos": "0",
    "birthRetain": "false",
    "birthPayload": "",
    "birthMsg": {},
    "closeTopic": "",
    "closeQos": "0",
    "closeRetain": "false",
    "closePayload": "",
    "closeMsg": {},
    "willTopic": "",
    "willQos": "0",
    "willRetain": "false",
    "willPayload": "",
    "willMsg": {},
    "userProps": "",
    "sessionExpiry": ""
   }
  ]
 },
 {
  "id": "rag-stage-store",
  "kind": "flow",
  "name": "RAG stage (store)",
  "description": "RedForge RAG pipeline, role store over MQTT (redforge/ingest/{instance}): runs store, retrieve and publishes each answer to the next stage named in metadata.pipeline, or to its replyTo (docs/agents.md)",
  "entry": [
   "MQTT redforge/ingest/{instance}"
  ],
  "params": [
   {
    "name": "EMBED_API",
    "description": "`ollama` (/api/...) or `openai` (/v1/...): the API the model server speaks",
    "default": "ollama",
    "required": false,
    "secret": false
   },
   {
    "name": "EMBED_API_KEY",
    "description": "sent as Authorization: Bearer",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "EMBED_MODEL",
    "description": "the embedding model",
    "default": "nomic-embed-text (ollama), text-embedding-3-small (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "EMBED_URL",
    "description": "the model server's root URL (a trailing /v1 is accepted)",
    "default": "http://127.0.0.1:11434 (ollama), https://api.openai.com (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "MILVUS_DB",
    "description": "Milvus dbName",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "MILVUS_TOKEN",
    "description": "Milvus Authorization: Bearer token",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "MILVUS_URL",
    "description": "a Milvus REST v2 server; when set it is the vector store instead of Postgres",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_BACKOFF_MS",
    "description": "first wait before a retry; doubles, capped at 30 s",
    "default": "500",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_MAX_ATTEMPTS",
    "description": "model calls per message before giving up",
    "default": "3",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_TIMEOUT_MS",
    "description": "per model call",
    "default": "60000",
    "required": false,
    "secret": false
   },
   {
    "name": "QUERY_CANDIDATES",
    "description": "rows fetched from the store before reranking",
    "default": "4 × top K (at most 1000)",
    "required": false,
    "secret": false
   },
   {
    "name": "QUERY_MIN_SCORE",
    "description": "lowest cosine similarity kept",
    "default": "-1",
    "required": false,
    "secret": false
   },
   {
    "name": "QUERY_TOP_K",
    "description": "results per search",
    "default": "5",
    "required": false,
    "secret": false
   },
   {
    "name": "REDFORGE_INSTANCE_ID",
    "description": "this instance's id (named in a RAG stage's trail); set by the bridge",
    "default": "set by the bridge",
    "required": false,
    "secret": false
   },
   {
    "name": "REDFORGE_MQTT_URL",
    "description": "the cluster's MQTT bus (RAG stage flows publish the next stage's work there); set by the bridge on every managed instance",
    "default": "set by the bridge",
    "required": false,
    "secret": false
   },
   {
    "name": "STORE_BACKEND",
    "description": "`auto` (pgvector when the extension can be created, else float8[]), `pgvector` or `array`",
    "default": "auto",
    "required": false,
    "secret": false
   },
   {
    "name": "STORE_COLLECTION",
    "description": "the collection when a message names none",
    "default": "default",
    "required": false,
    "secret": false
   },
   {
    "name": "STORE_POSTGRES_URL",
    "description": "the Postgres holding the vectors",
    "default": "the instance's DATABASE_URL",
    "required": false,
    "secret": true
   },
   {
    "name": "STORE_TABLE",
    "description": "the vectors' table (schema.table allowed), created at first use",
    "default": "redforge_vectors",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfragstore-tab",
    "type": "tab",
    "label": "RedForge · RAG stage (store)",
    "disabled": false,
    "info": "RedForge RAG pipeline, role store over MQTT (redforge/ingest/{instance}): runs store, retrieve and publishes each answer to the next stage named in metadata.pipeline, or to its replyTo (docs/agents.md)"
   },
   {
    "id": "rfragstore-gate",
    "type": "redforge-gate",
    "name": "entry (MQTT)",
    "source": "mqtt",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfragstore-route"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfragstore-route",
    "type": "function",
    "name": "route (metadata.pipeline)",
    "func": "// metadata.pipeline is the message's route (docs/agents.md \"RAG pipeline over MQTT\").\nconst STAGES = [\"store\",\"retrieve\"];\nconst KNOWN = [\"convert\",\"chunk\",\"embed\",\"store\",\"retrieve\",\"respond\"];\nconst REPLY = /^redforge\\/pipeline\\/[^/+#\\u0000]{1,128}\\/replies$/;\nconst ID = /^[^/+#\\u0000]{1,128}$/;\nconst out = new Array(STAGES.length + 2).fill(null);\nconst m = msg.payload && typeof msg.payload === \"object\" ? msg.payload.metadata : undefined;\nconst p = m && m.pipeline;\nif (!p || typeof p.replyTo !== \"string\" || !REPLY.test(p.replyTo)) {\n  node.warn(\"not a RAG pipeline message (no metadata.pipeline.replyTo under redforge/pipeline/): dropped\");\n  out[STAGES.length + 1] = msg;\n  return out;\n}\nconst next = Array.isArray(p.next) ? p.next : [];\nconst trail = Array.isArray(p.trail) ? p.trail.slice(-12) : [];\nconst badHop = next.length > 12 - 1 || !next.every((h) => h && KNOWN.includes(h.stage) && typeof h.instance === \"string\" && ID.test(h.instance));\nmsg.pipeline = { stage: String(p.stage), next: badHop ? [] : next, replyTo: p.replyTo, trail, received: Date.now() };\nconst i = STAGES.indexOf(p.stage);\nif (i >= 0 && !badHop) {\n  out[i] = msg;\n  return out;\n}\nmsg.payload = {\n  payload: null,\n  metadata: { flowId: typeof m.flowId === \"string\" && m.flowId ? m.flowId : \"unknown\", timestamp: new Date().toISOString(), source: \"rag-stage-store\", contentType: \"json\", status: \"error\" },\n  error: { code: \"invalid_input\", message: badHop\n    ? \"metadata.pipeline.next must be at most 11 hops of {stage: \" + KNOWN.join(\"|\") + \", instance}\"\n    : \"this instance (role store) runs stages \" + STAGES.join(\", \") + \", not \" + JSON.stringify(p.stage) },\n};\nout[STAGES.length] = msg;\nreturn out;",
    "outputs": 4,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragstore-store-in"
     ],
     [
      "rfragstore-retrieve-in"
     ],
     [
      "rfragstore-exit"
     ],
     [
      "rfragstore-drop"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfragstore-drop",
    "type": "function",
    "name": "not a pipeline message",
    "func": "return null;",
    "outputs": 0,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [],
    "z": "rfragstore-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfragstore-store-in",
    "type": "redforge-message",
    "name": "store: read msg_input",
    "mode": "input",
    "source": "storage",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfragstore-store-store"
     ],
     [
      "rfragstore-exit"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfragstore-store-store",
    "type": "redforge-vector-store",
    "name": "vector store",
    "collection": "${STORE_COLLECTION}",
    "postgresUrl": "${STORE_POSTGRES_URL}",
    "table": "${STORE_TABLE}",
    "backend": "${STORE_BACKEND}",
    "milvusUrl": "${MILVUS_URL}",
    "milvusToken": "${MILVUS_TOKEN}",
    "milvusDb": "${MILVUS_DB}",
    "topK": "${QUERY_TOP_K}",
    "wires": [
     [
      "rfragstore-store-out"
     ],
     [
      "rfragstore-store-dlq"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfragstore-store-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "storage",
    "wires": [
     [
      "rfragstore-store-out"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfragstore-store-out",
    "type": "redforge-message",
    "name": "store: build msg_output",
    "mode": "output",
    "source": "storage",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfragstore-exit"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfragstore-store-catch",
    "type": "catch",
    "name": "store: unexpected failure",
    "scope": [
     "rfragstore-store-store"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfragstore-store-failed"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfragstore-store-failed",
    "type": "function",
    "name": "internal_error",
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragstore-store-out"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfragstore-retrieve-in",
    "type": "redforge-message",
    "name": "retrieve: read msg_input",
    "mode": "input",
    "source": "query-processing",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfragstore-retrieve-request"
     ],
     [
      "rfragstore-exit"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 740,
    "y": 180
   },
   {
    "id": "rfragstore-retrieve-request",
    "type": "function",
    "name": "query embedding request",
    "func": "const api = String(env.get(\"EMBED_API\") || \"ollama\").toLowerCase();\nif (api !== \"ollama\" && api !== \"openai\") {\n  msg.agent.error = { code: \"invalid_input\", message: \"EMBED_API must be ollama or openai, not \" + api };\n  return [null, msg];\n}\nconst root = String(env.get(\"EMBED_URL\") || (api === \"openai\" ? \"https://api.openai.com\" : \"http://127.0.0.1:11434\")).replace(/\\/+$/, \"\").replace(/\\/v1$/, \"\");\nconst model = String(msg.agent.config.model || env.get(\"EMBED_MODEL\") || (api === \"openai\" ? \"text-embedding-3-small\" : \"nomic-embed-text\"));\nconst headers = { \"content-type\": \"application/json\" };\nif (env.get(\"EMBED_API_KEY\")) headers.authorization = \"Bearer \" + env.get(\"EMBED_API_KEY\");\nconst p = msg.payload;\nconst store = !!(p && typeof p === \"object\" && p.candidates === undefined);\nconst ok = p && typeof p.query === \"string\" && p.query.trim() !== \"\" && (store\n  ? p.collection === undefined || typeof p.collection === \"string\"\n  : Array.isArray(p.candidates) && p.candidates.every((c) => c && Array.isArray(c.embedding) && c.embedding.length > 0 && c.embedding.every((x) => typeof x === \"number\")));\nif (!ok) {\n  msg.agent.error = { code: \"invalid_input\", message: \"payload must be {query, candidates: [{embedding: number[], ...}]} or {query, collection?} (search the vector store)\" };\n  return [null, msg];\n}\nconst topK = Math.min(Number(msg.agent.config.topK || env.get(\"QUERY_TOP_K\")) || 5, 1000);\nconst minScore = Number(msg.agent.config.minScore !== undefined ? msg.agent.config.minScore : env.get(\"QUERY_MIN_SCORE\") || -1);\nconst fetchK = Math.min(Math.max(Number(msg.agent.config.candidates || env.get(\"QUERY_CANDIDATES\")) || topK * 4, topK), 1000);\nmsg.agent.query = { text: p.query, candidates: store ? null : p.candidates, topK: topK, minScore: Number.isFinite(minScore) ? minScore : -1,\n  store: store, collection: store ? (p.collection || msg.agent.config.collection) : undefined, fetchK: fetchK };\nmsg.agent.request = { api: api, model: model, url: root + (api === \"openai\" ? \"/v1/embeddings\" : \"/api/embed\"), headers: headers, body: { model: model, input: [p.query] } };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragstore-retrieve-call"
     ],
     [
      "rfragstore-retrieve-out"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 940,
    "y": 180
   },
   {
    "id": "rfragstore-retrieve-call",
    "type": "redforge-model-policy",
    "name": "approved model?",
    "outputs": 2,
    "wires": [
     [
      "rfragstore-retrieve-attempt"
     ],
     [
      "rfragstore-retrieve-blocked"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 1140,
    "y": 180
   },
   {
    "id": "rfragstore-retrieve-blocked",
    "type": "redforge-ai-audit",
    "name": "report blocked call",
    "property": "aiDecision",
    "wires": [
     [
      "rfragstore-retrieve-out"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 140,
    "y": 280
   },
   {
    "id": "rfragstore-retrieve-attempt",
    "type": "function",
    "name": "call model",
    "func": "const r = msg.agent.request;\nmsg.agent.attempts = (msg.agent.attempts || 0) + 1;\nmsg.agent.callStarted = Date.now();\nmsg.url = r.url;\nmsg.method = \"POST\";\nmsg.headers = Object.assign({}, r.headers);\nmsg.payload = r.body;\nmsg.requestTimeout = Number(env.get(\"MODEL_TIMEOUT_MS\")) || 60000;\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragstore-retrieve-http"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 340,
    "y": 280
   },
   {
    "id": "rfragstore-retrieve-http",
    "type": "http request",
    "name": "model endpoint",
    "method": "use",
    "ret": "obj",
    "paytoqs": "ignore",
    "url": "",
    "tls": "",
    "persist": false,
    "proxy": "",
    "insecureHTTPParser": false,
    "authType": "",
    "senderr": false,
    "headers": [],
    "wires": [
     [
      "rfragstore-retrieve-check"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 540,
    "y": 280
   },
   {
    "id": "rfragstore-retrieve-check",
    "type": "function",
    "name": "answered?",
    "func": "const a = msg.agent;\nconst code = msg.statusCode;\nconst max = Number(env.get(\"MODEL_MAX_ATTEMPTS\")) || 3;\nconst first = Number(env.get(\"MODEL_BACKOFF_MS\")) || 500;\nconst ok = typeof code === \"number\" && code >= 200 && code < 300;\nif (ok && msg.payload && typeof msg.payload === \"object\") {\n  node.status({});\n  return [msg, null, null];\n}\nconst what = ok ? \"an answer that is not JSON\" : typeof code === \"number\" ? \"HTTP \" + code : String(msg.payload).slice(0, 300);\nconst transient = !ok && (typeof code !== \"number\" || code === 408 || code === 429 || code >= 500);\nconst failCode = ok ? \"model_bad_answer\" : transient ? \"model_unavailable\" : \"model_rejected\";\nif (transient && a.attempts < max) {\n  msg.delay = Math.min(first * Math.pow(2, a.attempts - 1), 30000);\n  node.status({ fill: \"yellow\", shape: \"ring\", text: \"retry \" + (a.attempts + 1) + \"/\" + max + \" in \" + msg.delay + \" ms\" });\n  return [null, msg, null];\n}\nnode.status({ fill: \"red\", shape: \"dot\", text: what.slice(0, 40) });\na.error = {\n  code: failCode,\n  message: a.request.url + \" gave \" + what + \" (attempt \" + a.attempts + \" of \" + max + \")\",\n  attempts: a.attempts,\n};\nreturn [null, null, msg];",
    "outputs": 3,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragstore-retrieve-rank"
     ],
     [
      "rfragstore-retrieve-backoff"
     ],
     [
      "rfragstore-retrieve-dlq"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 740,
    "y": 280
   },
   {
    "id": "rfragstore-retrieve-backoff",
    "type": "delay",
    "name": "back off",
    "pauseType": "delayv",
    "timeout": "1",
    "timeoutUnits": "seconds",
    "rate": "1",
    "nbRateUnits": "1",
    "rateUnits": "second",
    "randomFirst": "1",
    "randomLast": "5",
    "randomUnits": "seconds",
    "drop": false,
    "allowrate": false,
    "outputs": 1,
    "wires": [
     [
      "rfragstore-retrieve-attempt"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 940,
    "y": 280
   },
   {
    "id": "rfragstore-retrieve-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "query-processing",
    "wires": [
     [
      "rfragstore-retrieve-out"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 1140,
    "y": 280
   },
   {
    "id": "rfragstore-retrieve-rank",
    "type": "function",
    "name": "rank by similarity",
    "func": "const r = msg.payload;\nconst api = msg.agent.request.api;\nconst q = api === \"openai\" ? r.data && r.data[0] && r.data[0].embedding : r.embeddings && r.embeddings[0];\nif (!Array.isArray(q) || q.length === 0) {\n  msg.agent.error = { code: \"model_bad_answer\", message: \"no query vector from \" + msg.agent.request.url, attempts: msg.agent.attempts };\n  return [null, msg];\n}\nconst wanted = msg.agent.query;\nconst inputTokens = api === \"openai\" ? (r.usage && r.usage.prompt_tokens) : r.prompt_eval_count;\nmsg.aiDecision = Object.assign({\n  provider: msg.agent.request.api === \"openai\" ? \"openai\" : \"ollama\",\n  model: msg.agent.request.model,\n  operationName: \"embeddings\",\n  latencyMs: Date.now() - msg.agent.callStarted,\n  metadata: { flowId: msg.agent.flowId, attempts: msg.agent.attempts },\n}, { responseModel: r.model, inputTokens: inputTokens, outputTokens: 0, prompt: wanted.text });\nif (wanted.store) {\n  // Store mode: the search runs after the audit node (search or answer).\n  wanted.vector = q;\n  msg.payload = null;\n  return [msg, null];\n}\nconst norm = (v) => Math.sqrt(v.reduce((s, x) => s + x * x, 0)) || 1;\nconst qn = norm(q);\nconst mismatch = wanted.candidates.findIndex((c) => c.embedding.length !== q.length);\nif (mismatch >= 0) {\n  msg.agent.error = { code: \"invalid_input\", message: \"candidate \" + mismatch + \" has \" + wanted.candidates[mismatch].embedding.length + \" dimensions, the query \" + q.length + \": embed both with the same model\" };\n  return [null, msg];\n}\nconst scored = wanted.candidates.map((c, i) => {\n  const score = c.embedding.reduce((s, x, k) => s + x * q[k], 0) / (norm(c.embedding) * qn);\n  const rest = Object.assign({}, c);\n  delete rest.embedding;\n  return Object.assign({ index: i }, rest, { score: Math.round(score * 1e6) / 1e6 });\n});\nscored.sort((a, b) => b.score - a.score || a.index - b.index);\nconst results = scored.filter((s) => s.score >= wanted.minScore).slice(0, wanted.topK).map((s, i) => Object.assign({ rank: i + 1 }, s));\nmsg.payload = { query: wanted.text, model: msg.agent.request.model, results: results };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragstore-retrieve-audit"
     ],
     [
      "rfragstore-retrieve-out"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 140,
    "y": 380
   },
   {
    "id": "rfragstore-retrieve-audit",
    "type": "redforge-ai-audit",
    "name": "report model call",
    "property": "aiDecision",
    "wires": [
     [
      "rfragstore-retrieve-route"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 340,
    "y": 380
   },
   {
    "id": "rfragstore-retrieve-route",
    "type": "function",
    "name": "search the store?",
    "func": "const wanted = msg.agent.query;\nif (!wanted.store) return [msg, null];\nmsg.payload = { action: \"search\", vector: wanted.vector, topK: wanted.fetchK, minScore: wanted.minScore };\nif (wanted.collection !== undefined) msg.payload.collection = wanted.collection;\nreturn [null, msg];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragstore-retrieve-out"
     ],
     [
      "rfragstore-retrieve-store"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 540,
    "y": 380
   },
   {
    "id": "rfragstore-retrieve-store",
    "type": "redforge-vector-store",
    "name": "vector store",
    "collection": "${STORE_COLLECTION}",
    "postgresUrl": "${STORE_POSTGRES_URL}",
    "table": "${STORE_TABLE}",
    "backend": "${STORE_BACKEND}",
    "milvusUrl": "${MILVUS_URL}",
    "milvusToken": "${MILVUS_TOKEN}",
    "milvusDb": "${MILVUS_DB}",
    "topK": "",
    "wires": [
     [
      "rfragstore-retrieve-rerank"
     ],
     [
      "rfragstore-retrieve-dlq"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 740,
    "y": 380
   },
   {
    "id": "rfragstore-retrieve-rerank",
    "type": "function",
    "name": "rerank by score",
    "func": "if (msg.agent.error) return msg;\nconst wanted = msg.agent.query;\nconst found = msg.payload;\n// The store's order is its own (approximate for Milvus): sort by score again, one result per text, then cut to topK.\nconst seen = new Set();\nconst results = found.results.slice()\n  .sort((a, b) => b.score - a.score || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0))\n  .filter((x) => x.score >= wanted.minScore && !seen.has(x.text) && seen.add(x.text))\n  .slice(0, wanted.topK)\n  .map((x, i) => ({ rank: i + 1, score: x.score, id: x.id, text: x.text, metadata: x.metadata }));\nmsg.payload = { query: wanted.text, model: msg.agent.request.model, collection: found.collection, backend: found.backend, results: results };\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragstore-retrieve-out"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 940,
    "y": 380
   },
   {
    "id": "rfragstore-retrieve-out",
    "type": "redforge-message",
    "name": "retrieve: build msg_output",
    "mode": "output",
    "source": "query-processing",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfragstore-exit"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 1140,
    "y": 380
   },
   {
    "id": "rfragstore-retrieve-catch",
    "type": "catch",
    "name": "retrieve: unexpected failure",
    "scope": [
     "rfragstore-retrieve-request",
     "rfragstore-retrieve-call",
     "rfragstore-retrieve-attempt",
     "rfragstore-retrieve-check",
     "rfragstore-retrieve-rank",
     "rfragstore-retrieve-route",
     "rfragstore-retrieve-store",
     "rfragstore-retrieve-rerank"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfragstore-retrieve-failed"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 140,
    "y": 480
   },
   {
    "id": "rfragstore-retrieve-failed",
    "type": "function",
    "name": "internal_error",
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragstore-retrieve-out"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 340,
    "y": 480
   },
   {
    "id": "rfragstore-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfragstore-forward"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 540,
    "y": 480
   },
   {
    "id": "rfragstore-forward",
    "type": "function",
    "name": "next stage or reply",
    "func": "const out = msg.payload;\nconst p = msg.pipeline;\nconst me = env.get(\"REDFORGE_INSTANCE_ID\") || \"\";\nconst trail = p.trail.concat([{ stage: p.stage, instance: me, received: p.received, answered: Date.now() }]);\nconst hop = p.next[0];\nif (out && out.metadata && out.metadata.status === \"success\" && hop) {\n  let payload = out.payload;\n  let contentType = out.metadata.contentType;\n  // The one reshaping of the chain: retrieval's answer is response generation's {question, context}.\n  if (p.stage === \"retrieve\" && hop.stage === \"respond\") {\n    payload = { question: out.payload.query, context: out.payload.results };\n    contentType = \"json\";\n  }\n  msg.topic = \"redforge/ingest/{instance}\".replace(\"{instance}\", hop.instance);\n  msg.payload = {\n    payload,\n    metadata: { flowId: out.metadata.flowId, timestamp: new Date().toISOString(), source: out.metadata.source, contentType, status: \"success\",\n      pipeline: { stage: hop.stage, next: p.next.slice(1), replyTo: p.replyTo, trail } },\n  };\n  if (out.config) msg.payload.config = out.config;\n} else {\n  msg.topic = p.replyTo;\n  out.metadata.pipeline = { stage: p.stage, instance: me, trail };\n  msg.payload = out;\n}\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfragstore-publish"
     ]
    ],
    "z": "rfragstore-tab",
    "x": 740,
    "y": 480
   },
   {
    "id": "rfragstore-publish",
    "type": "mqtt out",
    "name": "next stage / reply",
    "topic": "",
    "qos": "1",
    "retain": "false",
    "respTopic": "",
    "contentType": "",
    "userProps": "",
    "correl": "",
    "expiry": "",
    "broker": "rfragstore-bus",
    "wires": [],
    "z": "rfragstore-tab",
    "x": 940,
    "y": 480
   },
   {
    "id": "rfragstore-bus",
    "type": "mqtt-broker",
    "name": "cluster bus (REDFORGE_MQTT_URL)",
    "broker": "${REDFORGE_MQTT_URL}",
    "port": "",
    "clientid": "",
    "autoConnect": true,
    "usetls": false,
    "protocolVersion": "4",
    "keepalive": "60",
    "cleansession": true,
    "autoUnsubscribe": true,
    "birthTopic": "",
    "birthQos": "0",
    "birthRetain": "false",
    "birthPayload": "",
    "birthMsg": {},
    "closeTopic": "",
    "closeQos": "0",
    "closeRetain": "false",
    "closePayload": "",
    "closeMsg": {},
    "willTopic": "",
    "willQos": "0",
    "willRetain": "false",
    "willPayload": "",
    "willMsg": {},
    "userProps": "",
    "sessionExpiry": ""
   }
  ]
 },
 {
  "id": "refinement",
  "kind": "flow",
  "name": "refinement",
  "description": "RedForge coordination: POST /agents/refinement runs a refinement session across agent instances (docs/agents.md)",
  "entry": [
   "POST /agents/refinement"
  ],
  "params": [
   {
    "name": "REFINE_CRITIC",
    "description": "the critic's instance id (or config.critic)",
    "default": null,
    "required": true,
    "secret": false
   },
   {
    "name": "REFINE_GENERATOR",
    "description": "the generator's instance id (or config.generator)",
    "default": null,
    "required": true,
    "secret": false
   },
   {
    "name": "REFINE_MAX_ROUNDS",
    "description": "rounds at most (at most 20)",
    "default": "3",
    "required": false,
    "secret": false
   },
   {
    "name": "REFINE_STEP_TIMEOUT_MS",
    "description": "how long one step may take",
    "default": "30000",
    "required": false,
    "secret": false
   },
   {
    "name": "REFINE_STOP_PHRASE",
    "description": "a critique holding it stops the loop",
    "default": "APPROVED",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfrefine-http-tab",
    "type": "tab",
    "label": "RedForge · refinement",
    "disabled": false,
    "info": "RedForge coordination: POST /agents/refinement runs a refinement session across agent instances (docs/agents.md)"
   },
   {
    "id": "rfrefine-http-in",
    "type": "http in",
    "name": "POST /agents/refinement",
    "url": "/agents/refinement",
    "method": "post",
    "upload": false,
    "wires": [
     [
      "rfrefine-gate"
     ]
    ],
    "z": "rfrefine-http-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfrefine-gate",
    "type": "redforge-gate",
    "name": "entry",
    "source": "input",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfrefine-in"
     ]
    ],
    "z": "rfrefine-http-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfrefine-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "refinement",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfrefine-coordinate"
     ],
     [
      "rfrefine-exit"
     ]
    ],
    "z": "rfrefine-http-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfrefine-coordinate",
    "type": "redforge-coordinator",
    "name": "refinement",
    "pattern": "refinement",
    "generator": "${REFINE_GENERATOR}",
    "critic": "${REFINE_CRITIC}",
    "maxRounds": "${REFINE_MAX_ROUNDS}",
    "stopPhrase": "${REFINE_STOP_PHRASE}",
    "stepTimeout": "${REFINE_STEP_TIMEOUT_MS}",
    "wires": [
     [
      "rfrefine-out"
     ]
    ],
    "z": "rfrefine-http-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfrefine-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "refinement",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfrefine-exit"
     ]
    ],
    "z": "rfrefine-http-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfrefine-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfrefine-http-out"
     ]
    ],
    "z": "rfrefine-http-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfrefine-http-out",
    "type": "http response",
    "name": "answer",
    "statusCode": "",
    "headers": {},
    "wires": [],
    "z": "rfrefine-http-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfrefine-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rfrefine-coordinate"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfrefine-failed"
     ]
    ],
    "z": "rfrefine-http-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfrefine-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rfrefine-out"
     ]
    ],
    "z": "rfrefine-http-tab",
    "x": 540,
    "y": 180
   }
  ]
 },
 {
  "id": "response-generation",
  "kind": "flow",
  "name": "response generation",
  "description": "RedForge agent primitive: POST /agents/response-generation (docs/agents.md)",
  "entry": [
   "POST /agents/response-generation"
  ],
  "params": [
   {
    "name": "CHAT_API",
    "description": "`ollama` (/api/...) or `openai` (/v1/...): the API the model server speaks",
    "default": "ollama",
    "required": false,
    "secret": false
   },
   {
    "name": "CHAT_API_KEY",
    "description": "sent as Authorization: Bearer",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "CHAT_MODEL",
    "description": "the chat model",
    "default": "llama3.2 (ollama), gpt-4o-mini (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "CHAT_SYSTEM_PROMPT",
    "description": "the system message",
    "default": "Answer the question from the context only. If the context does not hold the answer, say so.",
    "required": false,
    "secret": false
   },
   {
    "name": "CHAT_URL",
    "description": "the model server's root URL (a trailing /v1 is accepted)",
    "default": "http://127.0.0.1:11434 (ollama), https://api.openai.com (openai)",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_BACKOFF_MS",
    "description": "first wait before a retry; doubles, capped at 30 s",
    "default": "500",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_MAX_ATTEMPTS",
    "description": "model calls per message before giving up",
    "default": "3",
    "required": false,
    "secret": false
   },
   {
    "name": "MODEL_TIMEOUT_MS",
    "description": "per model call",
    "default": "60000",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfrespond-tab",
    "type": "tab",
    "label": "RedForge · response generation",
    "disabled": false,
    "info": "RedForge agent primitive: POST /agents/response-generation (docs/agents.md)"
   },
   {
    "id": "rfrespond-http-in",
    "type": "http in",
    "name": "POST /agents/response-generation",
    "url": "/agents/response-generation",
    "method": "post",
    "upload": false,
    "wires": [
     [
      "rfrespond-gate"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfrespond-gate",
    "type": "redforge-gate",
    "name": "entry",
    "source": "input",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfrespond-in"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfrespond-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "response-generation",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfrespond-request"
     ],
     [
      "rfrespond-exit"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfrespond-request",
    "type": "function",
    "name": "chat request",
    "func": "const api = String(env.get(\"CHAT_API\") || \"ollama\").toLowerCase();\nif (api !== \"ollama\" && api !== \"openai\") {\n  msg.agent.error = { code: \"invalid_input\", message: \"CHAT_API must be ollama or openai, not \" + api };\n  return [null, msg];\n}\nconst root = String(env.get(\"CHAT_URL\") || (api === \"openai\" ? \"https://api.openai.com\" : \"http://127.0.0.1:11434\")).replace(/\\/+$/, \"\").replace(/\\/v1$/, \"\");\nconst model = String(msg.agent.config.model || env.get(\"CHAT_MODEL\") || (api === \"openai\" ? \"gpt-4o-mini\" : \"llama3.2\"));\nconst headers = { \"content-type\": \"application/json\" };\nif (env.get(\"CHAT_API_KEY\")) headers.authorization = \"Bearer \" + env.get(\"CHAT_API_KEY\");\nconst p = typeof msg.payload === \"string\" ? { question: msg.payload } : msg.payload;\nconst context = p && p.context === undefined ? [] : p && p.context;\nconst texts = Array.isArray(context) ? context.map((c) => typeof c === \"string\" ? c : c && typeof c.text === \"string\" ? c.text : null) : null;\nif (!p || typeof p.question !== \"string\" || p.question.trim() === \"\" || !texts || texts.some((t) => t === null)) {\n  msg.agent.error = { code: \"invalid_input\", message: \"payload must be a question, or {question, context} with context texts or chunks [{text}]\" };\n  return [null, msg];\n}\nconst system = String(msg.agent.config.systemPrompt || env.get(\"CHAT_SYSTEM_PROMPT\") || \"Answer the question from the context only. If the context does not hold the answer, say so.\");\nconst user = (texts.length ? \"Context:\\n\" + texts.join(\"\\n\\n\") + \"\\n\\n\" : \"\") + \"Question: \" + p.question.trim();\nconst messages = [{ role: \"system\", content: system }, { role: \"user\", content: user }];\nconst body = { model: model, messages: messages, stream: false };\nconst temperature = msg.agent.config.temperature !== undefined ? Number(msg.agent.config.temperature) : undefined;\nif (temperature !== undefined && Number.isFinite(temperature)) {\n  if (api === \"openai\") body.temperature = temperature; else body.options = { temperature: temperature };\n}\nmsg.agent.request = { api: api, model: model, url: root + (api === \"openai\" ? \"/v1/chat/completions\" : \"/api/chat\"), headers: headers, body: body, prompt: user };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfrespond-call"
     ],
     [
      "rfrespond-out"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfrespond-call",
    "type": "redforge-model-policy",
    "name": "approved model?",
    "outputs": 2,
    "wires": [
     [
      "rfrespond-attempt"
     ],
     [
      "rfrespond-blocked"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfrespond-blocked",
    "type": "redforge-ai-audit",
    "name": "report blocked call",
    "property": "aiDecision",
    "wires": [
     [
      "rfrespond-out"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfrespond-attempt",
    "type": "function",
    "name": "call model",
    "func": "const r = msg.agent.request;\nmsg.agent.attempts = (msg.agent.attempts || 0) + 1;\nmsg.agent.callStarted = Date.now();\nmsg.url = r.url;\nmsg.method = \"POST\";\nmsg.headers = Object.assign({}, r.headers);\nmsg.payload = r.body;\nmsg.requestTimeout = Number(env.get(\"MODEL_TIMEOUT_MS\")) || 60000;\nreturn msg;",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfrespond-http"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfrespond-http",
    "type": "http request",
    "name": "model endpoint",
    "method": "use",
    "ret": "obj",
    "paytoqs": "ignore",
    "url": "",
    "tls": "",
    "persist": false,
    "proxy": "",
    "insecureHTTPParser": false,
    "authType": "",
    "senderr": false,
    "headers": [],
    "wires": [
     [
      "rfrespond-check"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfrespond-check",
    "type": "function",
    "name": "answered?",
    "func": "const a = msg.agent;\nconst code = msg.statusCode;\nconst max = Number(env.get(\"MODEL_MAX_ATTEMPTS\")) || 3;\nconst first = Number(env.get(\"MODEL_BACKOFF_MS\")) || 500;\nconst ok = typeof code === \"number\" && code >= 200 && code < 300;\nif (ok && msg.payload && typeof msg.payload === \"object\") {\n  node.status({});\n  return [msg, null, null];\n}\nconst what = ok ? \"an answer that is not JSON\" : typeof code === \"number\" ? \"HTTP \" + code : String(msg.payload).slice(0, 300);\nconst transient = !ok && (typeof code !== \"number\" || code === 408 || code === 429 || code >= 500);\nconst failCode = ok ? \"model_bad_answer\" : transient ? \"model_unavailable\" : \"model_rejected\";\nif (transient && a.attempts < max) {\n  msg.delay = Math.min(first * Math.pow(2, a.attempts - 1), 30000);\n  node.status({ fill: \"yellow\", shape: \"ring\", text: \"retry \" + (a.attempts + 1) + \"/\" + max + \" in \" + msg.delay + \" ms\" });\n  return [null, msg, null];\n}\nnode.status({ fill: \"red\", shape: \"dot\", text: what.slice(0, 40) });\na.error = {\n  code: failCode,\n  message: a.request.url + \" gave \" + what + \" (attempt \" + a.attempts + \" of \" + max + \")\",\n  attempts: a.attempts,\n};\nreturn [null, null, msg];",
    "outputs": 3,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfrespond-read"
     ],
     [
      "rfrespond-backoff"
     ],
     [
      "rfrespond-dlq"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfrespond-backoff",
    "type": "delay",
    "name": "back off",
    "pauseType": "delayv",
    "timeout": "1",
    "timeoutUnits": "seconds",
    "rate": "1",
    "nbRateUnits": "1",
    "rateUnits": "second",
    "randomFirst": "1",
    "randomLast": "5",
    "randomUnits": "seconds",
    "drop": false,
    "allowrate": false,
    "outputs": 1,
    "wires": [
     [
      "rfrespond-attempt"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 740,
    "y": 180
   },
   {
    "id": "rfrespond-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "response-generation",
    "wires": [
     [
      "rfrespond-out"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 940,
    "y": 180
   },
   {
    "id": "rfrespond-read",
    "type": "function",
    "name": "read answer",
    "func": "const r = msg.payload;\nconst api = msg.agent.request.api;\nconst choice = api === \"openai\" && Array.isArray(r.choices) ? r.choices[0] : undefined;\nconst answer = api === \"openai\" ? choice && choice.message && choice.message.content : r.message && r.message.content;\nif (typeof answer !== \"string\") {\n  msg.agent.error = { code: \"model_bad_answer\", message: \"no answer text from \" + msg.agent.request.url, attempts: msg.agent.attempts };\n  return [null, msg];\n}\nconst inputTokens = api === \"openai\" ? r.usage && r.usage.prompt_tokens : r.prompt_eval_count;\nconst outputTokens = api === \"openai\" ? r.usage && r.usage.completion_tokens : r.eval_count;\nconst finishReason = api === \"openai\" ? choice.finish_reason : r.done_reason;\nmsg.aiDecision = Object.assign({\n  provider: msg.agent.request.api === \"openai\" ? \"openai\" : \"ollama\",\n  model: msg.agent.request.model,\n  operationName: \"chat\",\n  latencyMs: Date.now() - msg.agent.callStarted,\n  metadata: { flowId: msg.agent.flowId, attempts: msg.agent.attempts },\n}, { responseModel: r.model, responseId: r.id, prompt: msg.agent.request.prompt, response: answer, inputTokens: inputTokens, outputTokens: outputTokens, finishReason: finishReason });\nmsg.payload = { answer: answer, model: r.model || msg.agent.request.model, inputTokens: inputTokens, outputTokens: outputTokens, finishReason: finishReason };\nreturn [msg, null];",
    "outputs": 2,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "wires": [
     [
      "rfrespond-audit"
     ],
     [
      "rfrespond-out"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 1140,
    "y": 180
   },
   {
    "id": "rfrespond-audit",
    "type": "redforge-ai-audit",
    "name": "report model call",
    "property": "aiDecision",
    "wires": [
     [
      "rfrespond-out"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 140,
    "y": 280
   },
   {
    "id": "rfrespond-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "response-generation",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfrespond-exit"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 340,
    "y": 280
   },
   {
    "id": "rfrespond-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfrespond-http-out"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 540,
    "y": 280
   },
   {
    "id": "rfrespond-http-out",
    "type": "http response",
    "name": "answer",
    "statusCode": "",
    "headers": {},
    "wires": [],
    "z": "rfrespond-tab",
    "x": 740,
    "y": 280
   },
   {
    "id": "rfrespond-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rfrespond-request",
     "rfrespond-call",
     "rfrespond-attempt",
     "rfrespond-check",
     "rfrespond-read"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfrespond-failed"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 940,
    "y": 280
   },
   {
    "id": "rfrespond-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rfrespond-out"
     ]
    ],
    "z": "rfrespond-tab",
    "x": 1140,
    "y": 280
   }
  ]
 },
 {
  "id": "storage",
  "kind": "flow",
  "name": "storage (vector store)",
  "description": "RedForge agent primitive: POST /agents/storage (docs/agents.md)",
  "entry": [
   "POST /agents/storage"
  ],
  "params": [
   {
    "name": "MILVUS_DB",
    "description": "Milvus dbName",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "MILVUS_TOKEN",
    "description": "Milvus Authorization: Bearer token",
    "default": null,
    "required": false,
    "secret": true
   },
   {
    "name": "MILVUS_URL",
    "description": "a Milvus REST v2 server; when set it is the vector store instead of Postgres",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "QUERY_TOP_K",
    "description": "results per search",
    "default": "5",
    "required": false,
    "secret": false
   },
   {
    "name": "STORE_BACKEND",
    "description": "`auto` (pgvector when the extension can be created, else float8[]), `pgvector` or `array`",
    "default": "auto",
    "required": false,
    "secret": false
   },
   {
    "name": "STORE_COLLECTION",
    "description": "the collection when a message names none",
    "default": "default",
    "required": false,
    "secret": false
   },
   {
    "name": "STORE_POSTGRES_URL",
    "description": "the Postgres holding the vectors",
    "default": "the instance's DATABASE_URL",
    "required": false,
    "secret": true
   },
   {
    "name": "STORE_TABLE",
    "description": "the vectors' table (schema.table allowed), created at first use",
    "default": "redforge_vectors",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfstore-tab",
    "type": "tab",
    "label": "RedForge · storage (vector store)",
    "disabled": false,
    "info": "RedForge agent primitive: POST /agents/storage (docs/agents.md)"
   },
   {
    "id": "rfstore-http-in",
    "type": "http in",
    "name": "POST /agents/storage",
    "url": "/agents/storage",
    "method": "post",
    "upload": false,
    "wires": [
     [
      "rfstore-gate"
     ]
    ],
    "z": "rfstore-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfstore-gate",
    "type": "redforge-gate",
    "name": "entry",
    "source": "input",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfstore-in"
     ]
    ],
    "z": "rfstore-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfstore-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "storage",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfstore-store"
     ],
     [
      "rfstore-exit"
     ]
    ],
    "z": "rfstore-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfstore-store",
    "type": "redforge-vector-store",
    "name": "vector store",
    "collection": "${STORE_COLLECTION}",
    "postgresUrl": "${STORE_POSTGRES_URL}",
    "table": "${STORE_TABLE}",
    "backend": "${STORE_BACKEND}",
    "milvusUrl": "${MILVUS_URL}",
    "milvusToken": "${MILVUS_TOKEN}",
    "milvusDb": "${MILVUS_DB}",
    "topK": "${QUERY_TOP_K}",
    "wires": [
     [
      "rfstore-out"
     ],
     [
      "rfstore-dlq"
     ]
    ],
    "z": "rfstore-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfstore-dlq",
    "type": "redforge-dlq",
    "name": "dead letter",
    "source": "storage",
    "wires": [
     [
      "rfstore-out"
     ]
    ],
    "z": "rfstore-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfstore-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "storage",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfstore-exit"
     ]
    ],
    "z": "rfstore-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfstore-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfstore-http-out"
     ]
    ],
    "z": "rfstore-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfstore-http-out",
    "type": "http response",
    "name": "answer",
    "statusCode": "",
    "headers": {},
    "wires": [],
    "z": "rfstore-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfstore-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rfstore-store"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfstore-failed"
     ]
    ],
    "z": "rfstore-tab",
    "x": 540,
    "y": 180
   },
   {
    "id": "rfstore-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rfstore-out"
     ]
    ],
    "z": "rfstore-tab",
    "x": 740,
    "y": 180
   }
  ]
 },
 {
  "id": "text-chunking",
  "kind": "flow",
  "name": "text chunking",
  "description": "RedForge agent primitive: POST /agents/text-chunking (docs/agents.md)",
  "entry": [
   "POST /agents/text-chunking"
  ],
  "params": [
   {
    "name": "CHUNK_OVERLAP",
    "description": "overlap in characters, less than the size",
    "default": "200",
    "required": false,
    "secret": false
   },
   {
    "name": "CHUNK_SIZE",
    "description": "chunk size in characters (at most 100,000)",
    "default": "1000",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfchunk-tab",
    "type": "tab",
    "label": "RedForge · text chunking",
    "disabled": false,
    "info": "RedForge agent primitive: POST /agents/text-chunking (docs/agents.md)"
   },
   {
    "id": "rfchunk-http-in",
    "type": "http in",
    "name": "POST /agents/text-chunking",
    "url": "/agents/text-chunking",
    "method": "post",
    "upload": false,
    "wires": [
     [
      "rfchunk-gate"
     ]
    ],
    "z": "rfchunk-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfchunk-gate",
    "type": "redforge-gate",
    "name": "entry",
    "source": "input",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfchunk-in"
     ]
    ],
    "z": "rfchunk-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfchunk-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "text-chunking",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfchunk-chunk"
     ],
     [
      "rfchunk-exit"
     ]
    ],
    "z": "rfchunk-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfchunk-chunk",
    "type": "redforge-chunk",
    "name": "chunk text",
    "size": "${CHUNK_SIZE}",
    "overlap": "${CHUNK_OVERLAP}",
    "wires": [
     [
      "rfchunk-out"
     ]
    ],
    "z": "rfchunk-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfchunk-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "text-chunking",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfchunk-exit"
     ]
    ],
    "z": "rfchunk-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfchunk-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfchunk-http-out"
     ]
    ],
    "z": "rfchunk-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfchunk-http-out",
    "type": "http response",
    "name": "answer",
    "statusCode": "",
    "headers": {},
    "wires": [],
    "z": "rfchunk-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfchunk-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rfchunk-chunk"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfchunk-failed"
     ]
    ],
    "z": "rfchunk-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfchunk-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rfchunk-out"
     ]
    ],
    "z": "rfchunk-tab",
    "x": 540,
    "y": 180
   }
  ]
 },
 {
  "id": "voting",
  "kind": "flow",
  "name": "voting",
  "description": "RedForge coordination: POST /agents/voting runs a voting session across agent instances (docs/agents.md)",
  "entry": [
   "POST /agents/voting"
  ],
  "params": [
   {
    "name": "VOTING_DEADLINE_MS",
    "description": "how long answers are collected",
    "default": "30000",
    "required": false,
    "secret": false
   },
   {
    "name": "VOTING_JUDGE",
    "description": "the judge's instance id (rule judge)",
    "default": null,
    "required": false,
    "secret": false
   },
   {
    "name": "VOTING_JUDGE_DEADLINE_MS",
    "description": "how long the judge may take",
    "default": "30000",
    "required": false,
    "secret": false
   },
   {
    "name": "VOTING_PARTICIPANTS",
    "description": "participant instance ids, comma-separated (or config.participants per message)",
    "default": null,
    "required": true,
    "secret": false
   },
   {
    "name": "VOTING_QUORUM",
    "description": "answers needed to decide",
    "default": "a strict majority of the participants",
    "required": false,
    "secret": false
   },
   {
    "name": "VOTING_RULE",
    "description": "`majority`, `best_score` or `judge`",
    "default": "majority",
    "required": false,
    "secret": false
   }
  ],
  "flows": [
   {
    "id": "rfvote-http-tab",
    "type": "tab",
    "label": "RedForge · voting",
    "disabled": false,
    "info": "RedForge coordination: POST /agents/voting runs a voting session across agent instances (docs/agents.md)"
   },
   {
    "id": "rfvote-http-in",
    "type": "http in",
    "name": "POST /agents/voting",
    "url": "/agents/voting",
    "method": "post",
    "upload": false,
    "wires": [
     [
      "rfvote-gate"
     ]
    ],
    "z": "rfvote-http-tab",
    "x": 140,
    "y": 80
   },
   {
    "id": "rfvote-gate",
    "type": "redforge-gate",
    "name": "entry",
    "source": "input",
    "ttl": 300,
    "holdLimit": 1000,
    "wires": [
     [
      "rfvote-in"
     ]
    ],
    "z": "rfvote-http-tab",
    "x": 340,
    "y": 80
   },
   {
    "id": "rfvote-in",
    "type": "redforge-message",
    "name": "read msg_input",
    "mode": "input",
    "source": "voting",
    "contentType": "json",
    "outputs": 2,
    "wires": [
     [
      "rfvote-coordinate"
     ],
     [
      "rfvote-exit"
     ]
    ],
    "z": "rfvote-http-tab",
    "x": 540,
    "y": 80
   },
   {
    "id": "rfvote-coordinate",
    "type": "redforge-coordinator",
    "name": "voting",
    "pattern": "voting",
    "participants": "${VOTING_PARTICIPANTS}",
    "rule": "${VOTING_RULE}",
    "quorum": "${VOTING_QUORUM}",
    "deadline": "${VOTING_DEADLINE_MS}",
    "judge": "${VOTING_JUDGE}",
    "judgeDeadline": "${VOTING_JUDGE_DEADLINE_MS}",
    "wires": [
     [
      "rfvote-out"
     ]
    ],
    "z": "rfvote-http-tab",
    "x": 740,
    "y": 80
   },
   {
    "id": "rfvote-out",
    "type": "redforge-message",
    "name": "build msg_output",
    "mode": "output",
    "source": "voting",
    "contentType": "json",
    "outputs": 1,
    "wires": [
     [
      "rfvote-exit"
     ]
    ],
    "z": "rfvote-http-tab",
    "x": 940,
    "y": 80
   },
   {
    "id": "rfvote-exit",
    "type": "redforge-exit",
    "name": "exit",
    "wires": [
     [
      "rfvote-http-out"
     ]
    ],
    "z": "rfvote-http-tab",
    "x": 1140,
    "y": 80
   },
   {
    "id": "rfvote-http-out",
    "type": "http response",
    "name": "answer",
    "statusCode": "",
    "headers": {},
    "wires": [],
    "z": "rfvote-http-tab",
    "x": 140,
    "y": 180
   },
   {
    "id": "rfvote-catch",
    "type": "catch",
    "name": "unexpected failure",
    "scope": [
     "rfvote-coordinate"
    ],
    "uncaught": false,
    "wires": [
     [
      "rfvote-failed"
     ]
    ],
    "z": "rfvote-http-tab",
    "x": 340,
    "y": 180
   },
   {
    "id": "rfvote-failed",
    "type": "function",
    "name": "internal_error",
    "outputs": 1,
    "timeout": 0,
    "noerr": 0,
    "initialize": "",
    "finalize": "",
    "libs": [],
    "func": "msg.agent = msg.agent || {};\nmsg.agent.error = { code: \"internal_error\", message: String((msg.error && msg.error.message) || \"failed\") };\nreturn msg;",
    "wires": [
     [
      "rfvote-out"
     ]
    ],
    "z": "rfvote-http-tab",
    "x": 540,
    "y": 180
   }
  ]
 },
 {
  "id": "rag-pipeline",
  "kind": "pipeline",
  "name": "RAG pipeline",
  "description": "Retrieval-augmented generation across four instances: ingest (file-converter or text -> text-chunking -> embeddings -> storage) and query (query-processing in store mode -> response-generation). Chained over HTTP by the caller (each answer is the next stage's msg_input payload), or over the cluster's MQTT bus: each role's rag-stage-<role> flow runs its stage and publishes the answer to the next stage's instance (redforge/ingest/{instance}), the last one to the caller's reply topic (docs/agents.md \"RAG pipeline\").",
  "chaining": "http or mqtt",
  "instances": [
   {
    "role": "ingest",
    "blueprints": [
     "file-converter",
     "text-chunking",
     "rag-stage-ingest"
    ],
    "description": "turns a document into chunks"
   },
   {
    "role": "embed",
    "blueprints": [
     "embeddings",
     "rag-stage-embed"
    ],
    "description": "embeds chunks; run 1..N of them and spread the chunks",
    "scalable": true
   },
   {
    "role": "store",
    "blueprints": [
     "storage",
     "query-processing",
     "rag-stage-store"
    ],
    "description": "the vector store and retrieval; both primitives share STORE_* so they see one store"
   },
   {
    "role": "answer",
    "blueprints": [
     "response-generation",
     "rag-stage-answer"
    ],
    "description": "answers a question from the retrieved chunks"
   }
  ],
  "stages": {
   "ingest": [
    {
     "stage": "convert",
     "role": "ingest",
     "path": "/agents/file-converter",
     "optional": true,
     "takes": "a document (base64, contentType binary) or text",
     "gives": "text"
    },
    {
     "stage": "chunk",
     "role": "ingest",
     "path": "/agents/text-chunking",
     "takes": "text",
     "gives": "[{index, text, start, end}]"
    },
    {
     "stage": "embed",
     "role": "embed",
     "path": "/agents/embeddings",
     "takes": "chunks",
     "gives": "chunks with embedding"
    },
    {
     "stage": "store",
     "role": "store",
     "path": "/agents/storage",
     "takes": "chunks with embedding (config.collection)",
     "gives": "{collection, upserted, ids}"
    }
   ],
   "query": [
    {
     "stage": "retrieve",
     "role": "store",
     "path": "/agents/query-processing",
     "takes": "{query, collection}",
     "gives": "{query, results: [{rank, score, id, text, metadata}]}"
    },
    {
     "stage": "respond",
     "role": "answer",
     "path": "/agents/response-generation",
     "takes": "{question: query, context: results}",
     "gives": "{answer, model, inputTokens, outputTokens}"
    }
   ]
  },
  "entry": [
   "ingest: POST /agents/file-converter",
   "ingest: POST /agents/text-chunking",
   "ingest: MQTT redforge/ingest/{instance}",
   "embed: POST /agents/embeddings",
   "embed: MQTT redforge/ingest/{instance}",
   "store: POST /agents/storage",
   "store: POST /agents/query-processing",
   "store: MQTT redforge/ingest/{instance}",
   "answer: POST /agents/response-generation",
   "answer: MQTT redforge/ingest/{instance}"
  ],
  "params": [
   {
    "name": "CHAT_API",
    "description": "`ollama` (/api/...) or `openai` (/v1/...): the API the model server speaks",
    "default": "ollama",
    "required": false,
    "secret": false,
    "roles": [
     "answer"
    ]
   },
   {
    "name": "CHAT_API_KEY",
    "description": "sent as Authorization: Bearer",
    "default": null,
    "required": false,
    "secret": true,
    "roles": [
     "answer"
    ]
   },
   {
    "name": "CHAT_MODEL",
    "description": "the chat model",
    "default": "llama3.2 (ollama), gpt-4o-mini (openai)",
    "required": false,
    "secret": false,
    "roles": [
     "answer"
    ]
   },
   {
    "name": "CHAT_SYSTEM_PROMPT",
    "description": "the system message",
    "default": "Answer the question from the context only. If the context does not hold the answer, say so.",
    "required": false,
    "secret": false,
    "roles": [
     "answer"
    ]
   },
   {
    "name": "CHAT_URL",
    "description": "the model server's root URL (a trailing /v1 is accepted)",
    "default": "http://127.0.0.1:11434 (ollama), https://api.openai.com (openai)",
    "required": false,
    "secret": false,
    "roles": [
     "answer"
    ]
   },
   {
    "name": "CHUNK_OVERLAP",
    "description": "overlap in characters, less than the size",
    "default": "200",
    "required": false,
    "secret": false,
    "roles": [
     "ingest"
    ]
   },
   {
    "name": "CHUNK_SIZE",
    "description": "chunk size in characters (at most 100,000)",
    "default": "1000",
    "required": false,
    "secret": false,
    "roles": [
     "ingest"
    ]
   },
   {
    "name": "CONVERT_MAX_BYTES",
    "description": "largest document accepted",
    "default": "20971520",
    "required": false,
    "secret": false,
    "roles": [
     "ingest"
    ]
   },
   {
    "name": "EMBED_API",
    "description": "`ollama` (/api/...) or `openai` (/v1/...): the API the model server speaks",
    "default": "ollama",
    "required": false,
    "secret": false,
    "roles": [
     "embed",
     "store"
    ]
   },
   {
    "name": "EMBED_API_KEY",
    "description": "sent as Authorization: Bearer",
    "default": null,
    "required": false,
    "secret": true,
    "roles": [
     "embed",
     "store"
    ]
   },
   {
    "name": "EMBED_DIMENSIONS",
    "description": "dimensions to ask the model for (optional)",
    "default": null,
    "required": false,
    "secret": false,
    "roles": [
     "embed"
    ]
   },
   {
    "name": "EMBED_MODEL",
    "description": "the embedding model",
    "default": "nomic-embed-text (ollama), text-embedding-3-small (openai)",
    "required": false,
    "secret": false,
    "roles": [
     "embed",
     "store"
    ]
   },
   {
    "name": "EMBED_URL",
    "description": "the model server's root URL (a trailing /v1 is accepted)",
    "default": "http://127.0.0.1:11434 (ollama), https://api.openai.com (openai)",
    "required": false,
    "secret": false,
    "roles": [
     "embed",
     "store"
    ]
   },
   {
    "name": "MILVUS_DB",
    "description": "Milvus dbName",
    "default": null,
    "required": false,
    "secret": false,
    "roles": [
     "store"
    ]
   },
   {
    "name": "MILVUS_TOKEN",
    "description": "Milvus Authorization: Bearer token",
    "default": null,
    "required": false,
    "secret": true,
    "roles": [
     "store"
    ]
   },
   {
    "name": "MILVUS_URL",
    "description": "a Milvus REST v2 server; when set it is the vector store instead of Postgres",
    "default": null,
    "required": false,
    "secret": false,
    "roles": [
     "store"
    ]
   },
   {
    "name": "MODEL_BACKOFF_MS",
    "description": "first wait before a retry; doubles, capped at 30 s",
    "default": "500",
    "required": false,
    "secret": false,
    "roles": [
     "embed",
     "store",
     "answer"
    ]
   },
   {
    "name": "MODEL_MAX_ATTEMPTS",
    "description": "model calls per message before giving up",
    "default": "3",
    "required": false,
    "secret": false,
    "roles": [
     "embed",
     "store",
     "answer"
    ]
   },
   {
    "name": "MODEL_TIMEOUT_MS",
    "description": "per model call",
    "default": "60000",
    "required": false,
    "secret": false,
    "roles": [
     "embed",
     "store",
     "answer"
    ]
   },
   {
    "name": "QUERY_CANDIDATES",
    "description": "rows fetched from the store before reranking",
    "default": "4 × top K (at most 1000)",
    "required": false,
    "secret": false,
    "roles": [
     "store"
    ]
   },
   {
    "name": "QUERY_MIN_SCORE",
    "description": "lowest cosine similarity kept",
    "default": "-1",
    "required": false,
    "secret": false,
    "roles": [
     "store"
    ]
   },
   {
    "name": "QUERY_TOP_K",
    "description": "results per search",
    "default": "5",
    "required": false,
    "secret": false,
    "roles": [
     "store"
    ]
   },
   {
    "name": "REDFORGE_INSTANCE_ID",
    "description": "this instance's id (named in a RAG stage's trail); set by the bridge",
    "default": "set by the bridge",
    "required": false,
    "secret": false,
    "roles": [
     "ingest",
     "embed",
     "store",
     "answer"
    ]
   },
   {
    "name": "REDFORGE_MQTT_URL",
    "description": "the cluster's MQTT bus (RAG stage flows publish the next stage's work there); set by the bridge on every managed instance",
    "default": "set by the bridge",
    "required": false,
    "secret": false,
    "roles": [
     "ingest",
     "embed",
     "store",
     "answer"
    ]
   },
   {
    "name": "STORE_BACKEND",
    "description": "`auto` (pgvector when the extension can be created, else float8[]), `pgvector` or `array`",
    "default": "auto",
    "required": false,
    "secret": false,
    "roles": [
     "store"
    ]
   },
   {
    "name": "STORE_COLLECTION",
    "description": "the collection when a message names none",
    "default": "default",
    "required": false,
    "secret": false,
    "roles": [
     "store"
    ]
   },
   {
    "name": "STORE_POSTGRES_URL",
    "description": "the Postgres holding the vectors",
    "default": "the instance's DATABASE_URL",
    "required": false,
    "secret": true,
    "roles": [
     "store"
    ]
   },
   {
    "name": "STORE_TABLE",
    "description": "the vectors' table (schema.table allowed), created at first use",
    "default": "redforge_vectors",
    "required": false,
    "secret": false,
    "roles": [
     "store"
    ]
   },
   {
    "name": "TIKA_TIMEOUT_MS",
    "description": "per Tika call",
    "default": "60000",
    "required": false,
    "secret": false,
    "roles": [
     "ingest"
    ]
   },
   {
    "name": "TIKA_URL",
    "description": "an Apache Tika server; when set, documents are converted by PUT {TIKA_URL}/tika, else by the built-in PDF/DOCX/text readers",
    "default": null,
    "required": false,
    "secret": false,
    "roles": [
     "ingest"
    ]
   }
  ]
 }
];
