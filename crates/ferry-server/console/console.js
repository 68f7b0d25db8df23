// Ferry's web console: an administrator signs in with the same user name and password as on a
// device, and sees the server's overview, the changes it rejected into SynchronizationError
// (to compare with the server's object, correct and replay), its users, its synchronization
// history and the devices it has seen. One module with no dependencies and no build step: the
// server embeds this file and serves it at /console/console.js. It speaks only the public API.

/** Where the session lives: sessionStorage, so it ends with the browser tab. */
const SESSION_KEY = "ferry-console.session";
/** An access token this close to its expiry is renewed before a request, in milliseconds. */
const REFRESH_MARGIN_MS = 30_000;
/** The built-in attributes of a file entity, as the server adds them to the model's. */
const FILE_ATTRIBUTES = [
  ["ContentChanged", { kind: "datetime" }],
  ["ContentHash", { kind: "string" }],
  ["FileName", { kind: "string" }],
  ["FileSize", { kind: "integer" }],
];
const I64_MIN = -(2n ** 63n);
const I64_MAX = 2n ** 63n - 1n;
const OBJECT_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DATE_TIME = /^\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:\.\d{1,6})?)?(?:Z|\+00:00))?$/;
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

// ---------------------------------------------------------------------------------------------
// The API: JSON over fetch, the bearer token, renewal with the refresh token, error answers.

/** An error answer of the server (`{code, message, details, request_id}`), or no answer. */
class ApiError extends Error {
  constructor(status, code, message, requestId = null, details = null) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.requestId = requestId;
    this.details = details;
  }
}

/** The session is over (it expired, the user was disabled, or it was never there). */
class SessionEnded extends Error {
  constructor(message) {
    super(message);
    this.name = "SessionEnded";
  }
}

/** A user signed in whose roles are not the model's administrator roles. */
class NotAdministrator extends Error {
  constructor(user, roles, adminRoles) {
    const theirs =
      roles.length === 0 ? "no role" : `${plural(roles.length, "the role", "the roles")} ${roles.join(", ")}`;
    super(
      `The console is for administrators only: ${user} has ${theirs}, and only ` +
        `${plural(adminRoles.length, "the role", "the roles")} ${adminRoles.join(", ")} may use it.`,
    );
    this.name = "NotAdministrator";
  }
}

/** A value typed into a form that its member cannot take. */
class InputError extends Error {
  constructor(member, message) {
    super(`${member}: ${message}`);
    this.name = "InputError";
    this.member = member;
  }
}

const sessions = {
  /** The stored session, or null when there is none (or it is not one of ours). */
  read() {
    let stored;
    try {
      stored = JSON.parse(sessionStorage.getItem(SESSION_KEY) ?? "null");
    } catch {
      return null;
    }
    const valid =
      stored !== null &&
      typeof stored === "object" &&
      typeof stored.token === "string" &&
      typeof stored.user === "string";
    return valid ? stored : null;
  },
  write(session) {
    sessionStorage.setItem(SESSION_KEY, JSON.stringify(session));
  },
  clear() {
    sessionStorage.removeItem(SESSION_KEY);
  },
};

/** A session from the answer of a sign-in or a refresh. */
function sessionFrom(user, answer) {
  if (typeof answer?.token !== "string")
    throw new ApiError(0, "bad-answer", "the server's sign-in answer has no token");
  return {
    user,
    token: answer.token,
    refreshToken: typeof answer.refresh_token === "string" ? answer.refresh_token : null,
    expiresAt: typeof answer.expires_at === "string" ? answer.expires_at : null,
    roles: Array.isArray(answer.roles) ? answer.roles.map(String) : [],
  };
}

/**
 * JSON text to values, with integers beyond 2^53 kept exact as BigInt (the browser hands the
 * reviver each number's source text).
 */
function parseJson(text) {
  return JSON.parse(text, (_key, value, context) => {
    const source = context?.source;
    if (
      typeof value === "number" &&
      !Number.isSafeInteger(value) &&
      typeof source === "string" &&
      /^-?\d+$/.test(source)
    ) {
      return BigInt(source);
    }
    return value;
  });
}

/** Values to JSON text; a BigInt becomes its digits, as the wire writes a 64-bit integer. */
function encodeJson(value) {
  if (typeof value === "bigint") return value.toString();
  if (Array.isArray(value)) return `[${value.map(encodeJson).join(",")}]`;
  if (value !== null && typeof value === "object") {
    const members = Object.entries(value).map(([name, member]) => `${JSON.stringify(name)}:${encodeJson(member)}`);
    return `{${members.join(",")}}`;
  }
  return JSON.stringify(value);
}

/** One request; its answer's JSON, or an `ApiError` with the server's message. */
async function send(method, path, body, token) {
  const headers = { accept: "application/json" };
  if (token) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers["content-type"] = "application/json";
  let answer;
  let text;
  try {
    answer = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : encodeJson(body),
      cache: "no-store",
    });
    text = await answer.text();
  } catch (error) {
    throw new ApiError(
      0,
      "unreachable",
      `the server cannot be reached (${error.message}): check that it is running, then try again`,
    );
  }
  let parsed = null;
  try {
    parsed = text === "" ? null : parseJson(text);
  } catch {
    parsed = undefined;
  }
  const requestId = answer.headers.get("x-request-id");
  if (answer.ok) {
    if (parsed === undefined)
      throw new ApiError(
        answer.status,
        "bad-answer",
        `the server's answer to ${method} ${path} is not JSON`,
        requestId,
      );
    return parsed;
  }
  if (parsed && typeof parsed.message === "string") {
    throw new ApiError(
      answer.status,
      String(parsed.code ?? "error"),
      parsed.message,
      parsed.request_id ?? requestId,
      parsed.details ?? null,
    );
  }
  throw new ApiError(
    answer.status,
    "error",
    `the server answered ${answer.status} ${answer.statusText}`.trim(),
    requestId,
  );
}

let renewal = null;

/** The session's next access token, for its refresh token; one renewal at a time. */
function renew(session) {
  renewal ??= (async () => {
    try {
      const answer = await send("POST", "/v1/sign-in/refresh", { refresh_token: session.refreshToken });
      const next = sessionFrom(session.user, answer);
      sessions.write(next);
      return next;
    } catch (error) {
      if (error instanceof ApiError && (error.status === 400 || error.status === 401)) {
        sessions.clear();
        throw new SessionEnded(error.message);
      }
      throw error;
    } finally {
      renewal = null;
    }
  })();
  return renewal;
}

/**
 * A request as the signed-in administrator. The access token is renewed when it is about to
 * expire, or once when the server refuses it; a session that cannot be renewed is over.
 */
async function api(method, path, body) {
  let session = sessions.read();
  if (session === null) throw new SessionEnded("sign in to use the console");
  if (renewal !== null) session = await renewal;
  const expires = Date.parse(session.expiresAt ?? "");
  if (session.refreshToken && expires - Date.now() < REFRESH_MARGIN_MS) session = await renew(session);
  try {
    return await send(method, path, body, session.token);
  } catch (error) {
    if (!(error instanceof ApiError) || error.status !== 401) throw error;
    if (!session.refreshToken) {
      sessions.clear();
      throw new SessionEnded(error.message);
    }
  }
  // The server refused the token before handling the request, so sending it again is safe.
  // A refresh token is spent once: when another request renewed the session meanwhile, its
  // token is the one to use.
  const latest = sessions.read();
  if (latest === null) throw new SessionEnded("the session was ended by another request");
  if (renewal !== null) session = await renewal;
  else if (latest.token !== session.token) session = latest;
  else session = await renew(session);
  try {
    return await send(method, path, body, session.token);
  } catch (error) {
    if (error instanceof ApiError && error.status === 401) {
      sessions.clear();
      throw new SessionEnded(error.message);
    }
    throw error;
  }
}

/** Signs in; only a user with one of the model's administrator roles keeps the session. */
async function signIn(user, password) {
  const session = sessionFrom(user, await send("POST", "/v1/sign-in", { user, password }));
  const answer = await send("GET", "/v1/model", undefined, session.token);
  const model = modelFrom(answer);
  // When the model's text says which roles administer, a user without one is told so now;
  // otherwise the administrators' endpoints decide (and answer 403).
  if (model.adminRoles.length > 0 && !session.roles.some((role) => model.adminRoles.includes(role))) {
    throw new NotAdministrator(user, session.roles, model.adminRoles);
  }
  cachedModel = model;
  sessions.write(session);
}

// ---------------------------------------------------------------------------------------------
// The model: member types and administrator roles, read from the model file's text (TOML).

let cachedModel = null;

/** The server's model, fetched once per page load. */
async function loadModel() {
  cachedModel ??= modelFrom(await api("GET", "/v1/model"));
  return cachedModel;
}

function modelFrom(answer) {
  if (typeof answer?.text !== "string") throw new ApiError(0, "bad-answer", "the server's model answer has no text");
  return { version: String(answer.version ?? ""), ...parseModel(answer.text) };
}

/**
 * What the console needs of a model file: each entity's members with their types (attributes
 * in the order written, then associations by qualified name, then a file entity's built-in
 * attributes), and the roles with `admin = true`. Keys it does not need are skipped.
 * Exported for the tests, which import this module in the page.
 */
export function parseModel(text) {
  const entities = new Map();
  const roles = new Map();
  const entity = (name) => {
    if (!entities.has(name)) entities.set(name, { name, attributes: new Map(), associations: new Map(), file: false });
    return entities.get(name);
  };
  const role = (name) => {
    if (!roles.has(name)) roles.set(name, { name, admin: false });
    return roles.get(name);
  };
  const attribute = (entityName, name) => {
    const attributes = entity(entityName).attributes;
    if (!attributes.has(name)) attributes.set(name, {});
    return attributes.get(name);
  };
  const association = (entityName, name) => {
    const associations = entity(entityName).associations;
    if (!associations.has(name)) associations.set(name, {});
    return associations.get(name);
  };
  const assign = (path, value) => {
    const [section, owner, kind, member, field] = path;
    if (section === "roles" && owner !== undefined) {
      if (path.length === 2 && isTable(value)) role(owner).admin = value.admin === true;
      else if (path.length === 3 && kind === "admin") role(owner).admin = value === true;
      else if (path.length === 2) role(owner);
      return;
    }
    if (section !== "entities" || owner === undefined) return;
    if (path.length === 2 && isTable(value)) {
      for (const [key, inner] of Object.entries(value)) assign([section, owner, key], inner);
      return;
    }
    if (path.length === 3 && kind === "file") entity(owner).file = value === true;
    if ((kind === "attributes" || kind === "associations") && path.length === 3 && isTable(value)) {
      for (const [key, inner] of Object.entries(value)) assign([section, owner, kind, key], inner);
      return;
    }
    if (kind === "attributes" && member !== undefined) {
      if (path.length === 4) Object.assign(attribute(owner, member), isTable(value) ? value : {});
      else if (path.length === 5) attribute(owner, member)[field] = value;
    }
    if (kind === "associations" && member !== undefined) {
      if (path.length === 4) Object.assign(association(owner, member), isTable(value) ? value : {});
      else if (path.length === 5) association(owner, member)[field] = value;
    }
  };

  let table = [];
  let closing = null;
  for (const raw of text.split(/\r?\n/)) {
    if (closing !== null) {
      if (raw.includes(closing)) closing = null;
      continue;
    }
    const line = withoutComment(raw).trim();
    if (line === "") continue;
    if (line.startsWith("[[")) {
      table = null;
      continue;
    }
    if (line.startsWith("[")) {
      table = parseKey(line.slice(1, line.lastIndexOf("]")));
      if (table !== null && table.length >= 2) assign(table, {});
      continue;
    }
    const equals = indexOutside(line, "=");
    if (table === null || equals < 0) continue;
    const key = parseKey(line.slice(0, equals));
    const valueText = line.slice(equals + 1).trim();
    const opener = valueText.slice(0, 3);
    if ((opener === '"""' || opener === "'''") && !valueText.slice(3).includes(opener)) {
      closing = opener;
      continue;
    }
    if (key === null) continue;
    const value = parseValue(valueText);
    if (value !== undefined) assign([...table, ...key], value);
  }

  const described = new Map();
  for (const [name, declared] of entities) {
    const module = name.includes(".") ? name.slice(0, name.indexOf(".")) : "";
    const members = new Map();
    for (const [member, attributeFile] of declared.attributes) members.set(member, attributeType(attributeFile));
    for (const [member, associationFile] of declared.associations) {
      const qualified = module === "" ? member : `${module}.${member}`;
      members.set(qualified, { kind: "reference", target: String(associationFile.target ?? "") });
    }
    if (declared.file) for (const [member, type] of FILE_ATTRIBUTES) members.set(member, type);
    described.set(name, { name, members });
  }
  const roleList = [...roles.values()];
  return {
    entities: described,
    roles: roleList.map((declared) => declared.name),
    adminRoles: roleList.filter((declared) => declared.admin).map((declared) => declared.name),
  };
}

function attributeType(declared) {
  const kind = typeof declared.type === "string" ? declared.type : "unknown";
  switch (kind) {
    case "enumeration":
      return { kind, values: Array.isArray(declared.values) ? declared.values.map(String) : [] };
    case "decimal":
      return { kind, scale: Number.isInteger(declared.scale) ? declared.scale : 2 };
    case "string":
    case "integer":
    case "boolean":
    case "datetime":
    case "binary":
      return { kind };
    default:
      return { kind: "unknown" };
  }
}

function isTable(value) {
  return value !== null && typeof value === "object" && !Array.isArray(value);
}

/** A line without its `#` comment (a `#` inside a string stays). */
function withoutComment(line) {
  const at = indexOutside(line, "#");
  return at < 0 ? line : line.slice(0, at);
}

/** The first index of `wanted` outside quoted strings, or -1. */
function indexOutside(text, wanted) {
  let quote = null;
  for (let i = 0; i < text.length; i++) {
    const char = text[i];
    if (quote !== null) {
      if (char === "\\" && quote === '"') i++;
      else if (char === quote) quote = null;
    } else if (char === '"' || char === "'") quote = char;
    else if (char === wanted) return i;
  }
  return -1;
}

/** A dotted TOML key (`entities."Field.WorkOrder"`) as its parts, or null if it is not a key. */
function parseKey(text) {
  const parts = [];
  const reader = { text: text.trim(), at: 0 };
  while (reader.at < reader.text.length) {
    skipSpace(reader);
    const char = reader.text[reader.at];
    let part;
    if (char === '"' || char === "'") part = readString(reader);
    else {
      const match = /^[A-Za-z0-9_-]+/.exec(reader.text.slice(reader.at));
      if (match === null) return null;
      part = match[0];
      reader.at += part.length;
    }
    if (part === undefined) return null;
    parts.push(part);
    skipSpace(reader);
    if (reader.at === reader.text.length) break;
    if (reader.text[reader.at] !== ".") return null;
    reader.at++;
  }
  return parts.length === 0 ? null : parts;
}

/** A TOML value written on one line (string, number, boolean, array, inline table), or undefined. */
function parseValue(text) {
  const reader = { text, at: 0 };
  const value = readValue(reader);
  skipSpace(reader);
  return reader.at === reader.text.length ? value : undefined;
}

function skipSpace(reader) {
  while (reader.at < reader.text.length && /\s/.test(reader.text[reader.at])) reader.at++;
}

function readValue(reader) {
  skipSpace(reader);
  const char = reader.text[reader.at];
  if (char === '"' || char === "'") return readString(reader);
  if (char === "[") return readList(reader, "]", () => readValue(reader));
  if (char === "{") {
    const table = {};
    const ok = readList(reader, "}", () => {
      const equals = indexOutside(reader.text.slice(reader.at), "=");
      if (equals < 0) return undefined;
      const key = parseKey(reader.text.slice(reader.at, reader.at + equals));
      reader.at += equals + 1;
      const value = readValue(reader);
      if (key === null || value === undefined) return undefined;
      let target = table;
      for (const part of key.slice(0, -1)) target = target[part] = isTable(target[part]) ? target[part] : {};
      target[key.at(-1)] = value;
      return true;
    });
    return ok === undefined ? undefined : table;
  }
  const match = /^[^,\]}\s]+/.exec(reader.text.slice(reader.at));
  if (match === null) return undefined;
  reader.at += match[0].length;
  const word = match[0];
  if (word === "true") return true;
  if (word === "false") return false;
  const number = Number(word.replaceAll("_", ""));
  return Number.isNaN(number) ? word : number;
}

/** Items separated by commas up to `end` (a trailing comma allowed), or undefined. */
function readList(reader, end, readItem) {
  reader.at++;
  const items = [];
  for (;;) {
    skipSpace(reader);
    if (reader.text[reader.at] === end) {
      reader.at++;
      return items;
    }
    const item = readItem();
    if (item === undefined) return undefined;
    items.push(item);
    skipSpace(reader);
    if (reader.text[reader.at] === ",") reader.at++;
    else if (reader.text[reader.at] !== end) return undefined;
  }
}

function readString(reader) {
  const quote = reader.text[reader.at];
  let at = reader.at + 1;
  let value = "";
  while (at < reader.text.length && reader.text[at] !== quote) {
    if (quote === '"' && reader.text[at] === "\\") {
      const escaped = { n: "\n", t: "\t", r: "\r", '"': '"', "\\": "\\" }[reader.text[at + 1]];
      value += escaped ?? reader.text[at + 1] ?? "";
      at += 2;
    } else {
      value += reader.text[at];
      at++;
    }
  }
  if (at >= reader.text.length) return undefined;
  reader.at = at + 1;
  return value;
}

// ---------------------------------------------------------------------------------------------
// Values: how a member's value shows, and what an edited text becomes on the wire.

/** The type of a member, from the model, or else from the value the change holds. */
function memberType(entity, member, sample) {
  const declared = entity?.members.get(member);
  if (declared !== undefined && declared.kind !== "unknown") return declared;
  if (typeof sample === "number" || typeof sample === "bigint") return { kind: "integer" };
  if (typeof sample === "boolean") return { kind: "boolean" };
  return { kind: "string", inferred: true };
}

/** A value as a form shows it ("" for empty). */
function valueText(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "object") return JSON.stringify(value);
  return String(value);
}

/** What a member's type is called in the console. */
function typeLabel(type) {
  switch (type.kind) {
    case "datetime":
      return "date-time, UTC: 2026-11-23T10:00:00Z";
    case "reference":
      return type.target ? `id of a ${type.target}` : "object id";
    case "binary":
      return "binary, base64";
    case "decimal":
      return `decimal (${type.scale} ${plural(type.scale, "place", "places")})`;
    case "string":
      return type.inferred ? "text" : "string";
    default:
      return type.kind;
  }
}

/**
 * The wire value of text typed for a member: integers as numbers (BigInt past 2^53),
 * booleans, and everything else as the string the wire expects; empty text is an empty
 * member (`null`). Text the type cannot take is an `InputError` naming the member.
 * Exported for the tests, which import this module in the page.
 */
export function wireValue(member, type, text) {
  const trimmed = text.trim();
  if (type.kind === "string") return text === "" ? null : text;
  if (trimmed === "") return null;
  switch (type.kind) {
    case "integer": {
      if (!/^[+-]?\d+$/.test(trimmed)) throw new InputError(member, `expected a whole number, found "${text}"`);
      const integer = BigInt(trimmed);
      if (integer < I64_MIN || integer > I64_MAX) {
        throw new InputError(member, `expected a 64-bit integer (from ${I64_MIN} to ${I64_MAX}), found ${trimmed}`);
      }
      return Number.isSafeInteger(Number(integer)) ? Number(integer) : integer;
    }
    case "decimal": {
      if (!/^[+-]?(?:\d+(?:\.\d+)?|\.\d+)$/.test(trimmed)) {
        throw new InputError(member, `expected a decimal number such as 12.50, found "${text}"`);
      }
      const fraction = (trimmed.split(".")[1] ?? "").replace(/0+$/, "");
      if (fraction.length > type.scale) {
        throw new InputError(
          member,
          `expected at most ${type.scale} ${plural(type.scale, "digit", "digits")} after the point, found ${trimmed}`,
        );
      }
      return trimmed.replace(/^\+/, "");
    }
    case "boolean":
      if (trimmed === "true") return true;
      if (trimmed === "false") return false;
      throw new InputError(member, `expected true or false, found "${text}"`);
    case "datetime":
      if (!DATE_TIME.test(trimmed))
        throw new InputError(member, `expected a UTC date-time such as 2026-11-23T10:00:00Z, found "${text}"`);
      return trimmed;
    case "enumeration":
      if (!type.values.includes(trimmed))
        throw new InputError(member, `expected one of ${type.values.join(", ")}, found "${text}"`);
      return trimmed;
    case "reference":
      if (!OBJECT_ID.test(trimmed))
        throw new InputError(
          member,
          `expected an object id such as 01a24281-7f34-aa56-5065-90dde6cc1ec4, found "${text}"`,
        );
      return trimmed.toLowerCase();
    case "binary":
      if (!BASE64.test(trimmed)) throw new InputError(member, `expected base64 bytes, found "${text}"`);
      return trimmed;
    default:
      throw new InputError(member, `has a type the console does not know (${type.kind})`);
  }
}

// ---------------------------------------------------------------------------------------------
// Building the page: elements from data, never HTML from strings.

/** An element with attributes, listeners (`onclick`) and children (strings become text). */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
    else if (key === "class") node.className = value;
    else if (key === "value" || key === "disabled") node[key] = value;
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

function plural(count, one, many) {
  return Number(count) === 1 ? one : many;
}

/** The first letter of a server's message in capitals, for a sentence on its own. */
function sentence(text) {
  const message = String(text);
  return message.charAt(0).toUpperCase() + message.slice(1);
}

/** A UTC time from the server as `2026-12-04 19:21:52 UTC`, in a `<time>` element. */
function time(iso) {
  if (typeof iso !== "string" || iso === "") return h("span", { class: "muted" }, "never");
  const match = /^(\d{4}-\d{2}-\d{2})T(\d{2}:\d{2}:\d{2})/.exec(iso);
  return h("time", { datetime: iso }, match === null ? iso : `${match[1]} ${match[2]} UTC`);
}

/** An id shown by its first characters, the whole of it in the tooltip. */
function shortId(id) {
  const text = String(id ?? "");
  if (text.length <= 12) return h("code", { class: "id" }, text);
  return h("code", { class: "id", title: text }, `${text.slice(0, 8)}…`);
}

/**
 * A table in a box of its own, which scrolls sideways if it must; on a narrow window each row
 * stacks into a card, every cell labelled with its column's heading.
 */
function table(label, headings, rows, kind = "") {
  for (const row of rows) {
    [...row.children].forEach((cell, index) => {
      if (cell.tagName === "TD" && headings[index] !== undefined) cell.dataset.label = headings[index];
    });
  }
  return h(
    "div",
    { class: "table-scroll", role: "region", "aria-label": label, tabindex: "0" },
    h(
      "table",
      { class: `stack ${kind}`.trim() },
      h("caption", { class: "visually-hidden" }, label),
      h(
        "thead",
        {},
        h(
          "tr",
          {},
          headings.map((heading) => h("th", { scope: "col" }, heading)),
        ),
      ),
      h("tbody", {}, rows),
    ),
  );
}

/** An error as the page shows it: the server's message, and its request id, small. */
function errorPanel(error) {
  const forbidden = error instanceof ApiError && error.status === 403;
  const text =
    error instanceof ApiError || error instanceof InputError || error instanceof NotAdministrator
      ? sentence(error.message)
      : `Something went wrong in the console: ${error?.message ?? error}`;
  const ended = /[.!?]$/.test(text) ? text : `${text}.`;
  return h(
    "div",
    { class: "panel panel-error", role: "alert" },
    forbidden
      ? h(
          "p",
          {},
          h("strong", {}, "Administrators only. "),
          `The server refused: ${ended} Sign in as an administrator to use this page.`,
        )
      : h("p", {}, ended),
    error instanceof ApiError && error.requestId
      ? h("p", { class: "request-id" }, "Request id ", h("code", {}, error.requestId))
      : null,
  );
}

/** A message after an action: `kind` is `success` or `error`. */
function notice(kind, text) {
  return h(
    "div",
    { class: `panel panel-${kind}`, role: kind === "error" ? "alert" : "status", tabindex: "-1" },
    h("p", {}, text),
  );
}

// ---------------------------------------------------------------------------------------------
// The frame: the bar with the navigation, the router, and sign-in.

const NAVIGATION = [
  ["overview", "#/overview", "Overview"],
  ["failures", "#/failures", "Failures"],
  ["users", "#/users", "Users"],
  ["history", "#/history", "History"],
  ["devices", "#/devices", "Devices"],
];

const PAGES = [
  { pattern: /^\/(?:overview)?$/, nav: "overview", title: () => "Overview", render: overviewPage },
  { pattern: /^\/failures$/, nav: "failures", title: () => "Failures", render: failuresPage },
  { pattern: /^\/failures\/(\d+)$/, nav: "failures", title: (match) => `Failure ${match[1]}`, render: failurePage },
  { pattern: /^\/users$/, nav: "users", title: () => "Users", render: usersPage },
  { pattern: /^\/history$/, nav: "history", title: () => "History", render: historyPage },
  { pattern: /^\/devices$/, nav: "devices", title: () => "Devices", render: devicesPage },
];

const bar = document.getElementById("bar");
const main = document.getElementById("main");
let renderTicket = 0;

/** The route of the address's hash: `#/failures?user=bob` is `/failures` with its parameters. */
function currentRoute() {
  const hash = location.hash.replace(/^#/, "");
  const question = hash.indexOf("?");
  const path = (question < 0 ? hash : hash.slice(0, question)) || "/";
  const params = new URLSearchParams(question < 0 ? "" : hash.slice(question + 1));
  return { path, params };
}

/** Draws the bar: the navigation with the current page marked, and who is signed in. */
function drawBar(session, current) {
  const brand = h("a", { class: "brand", href: "#/overview" }, "Ferry console");
  if (session === null) {
    bar.replaceChildren(h("div", { class: "bar-inner" }, brand));
    return;
  }
  const links = NAVIGATION.map(([key, href, label]) =>
    h("li", {}, h("a", { href, "aria-current": key === current ? "page" : null }, label)),
  );
  const signOut = h("button", { type: "button", class: "button-quiet", onclick: () => leave() }, "Sign out");
  bar.replaceChildren(
    h(
      "div",
      { class: "bar-inner" },
      brand,
      h("nav", { "aria-label": "Console pages" }, h("ul", {}, links)),
      h(
        "p",
        { class: "who" },
        h("span", { class: "visually-hidden" }, "Signed in as "),
        h("strong", {}, session.user),
        signOut,
      ),
    ),
  );
}

/** Forgets the session (the server has no sign-out: the tokens expire) and shows sign-in. */
function leave() {
  sessions.clear();
  cachedModel = null;
  showSignIn({ kind: "success", text: "You signed out." });
}

/**
 * Shows the page of the address's hash: its heading at once, then its content once loaded,
 * or the error that stopped it. `flash` is a message to show above the content.
 */
async function render(flash = null) {
  const ticket = ++renderTicket;
  const session = sessions.read();
  if (session === null) return showSignIn(null);
  const route = currentRoute();
  let match = null;
  const page = PAGES.find((candidate) => (match = candidate.pattern.exec(route.path)) !== null);
  drawBar(session, page?.nav);
  if (page === undefined) {
    document.title = "Page not found · Ferry console";
    const heading = h("h1", { tabindex: "-1" }, "Page not found");
    main.replaceChildren(
      heading,
      h(
        "p",
        {},
        "The console has no page at ",
        h("code", {}, `#${route.path}`),
        ". ",
        h("a", { href: "#/overview" }, "Go to the overview"),
        ".",
      ),
    );
    heading.focus();
    return;
  }
  const title = page.title(match);
  document.title = `${title} · Ferry console`;
  const heading = h("h1", { tabindex: "-1" }, title);
  main.replaceChildren(heading, h("p", { class: "muted", role: "status" }, "Loading…"));
  main.setAttribute("aria-busy", "true");
  let content;
  try {
    content = await page.render({ match, params: route.params, flash });
  } catch (error) {
    if (ticket !== renderTicket) return;
    if (error instanceof SessionEnded)
      return showSignIn({ kind: "error", text: `Your session ended (${error.message}). Sign in again to go on.` });
    content = [errorPanel(error)];
  }
  if (ticket !== renderTicket) return;
  main.removeAttribute("aria-busy");
  const flashPanel = flash === null ? null : notice(flash.kind, flash.text);
  main.replaceChildren(heading, ...[flashPanel, content].flat().filter(Boolean));
  // Focus follows the page, so a keyboard or screen reader user starts at its heading.
  if (flashPanel !== null) flashPanel.focus();
  else heading.focus();
}

/** The sign-in form; after signing in, the page the address names. */
function showSignIn(message) {
  ++renderTicket;
  drawBar(null);
  document.title = "Sign in · Ferry console";
  main.removeAttribute("aria-busy");
  const user = h("input", {
    id: "sign-in-user",
    name: "user",
    autocomplete: "username",
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", {
    id: "sign-in-password",
    name: "password",
    type: "password",
    autocomplete: "current-password",
  });
  const button = h("button", { type: "submit" }, "Sign in");
  const problem = h("div", { class: "form-problem", "aria-live": "assertive" });
  const form = h(
    "form",
    { class: "card-form", novalidate: true },
    h("div", { class: "field" }, h("label", { for: user.id }, "User name"), user),
    h("div", { class: "field" }, h("label", { for: password.id }, "Password"), password),
    h("div", { class: "actions" }, button),
    problem,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const missing = user.value.trim() === "" ? user : password.value === "" ? password : null;
    if (missing !== null) {
      problem.replaceChildren(
        errorPanel(new InputError(missing === user ? "User name" : "Password", "enter it to sign in")),
      );
      missing.focus();
      return;
    }
    button.disabled = true;
    button.textContent = "Signing in…";
    problem.replaceChildren();
    try {
      await signIn(user.value.trim(), password.value);
      password.value = "";
      await render();
    } catch (error) {
      password.value = "";
      problem.replaceChildren(errorPanel(error));
      button.disabled = false;
      button.textContent = "Sign in";
      password.focus();
    }
  });
  const heading = h("h1", { tabindex: "-1" }, "Sign in");
  const intro = h(
    "p",
    {},
    "The console is for the server's administrators. Sign in with the user name and password you use on a device.",
  );
  main.replaceChildren(
    ...[heading, message === null ? null : notice(message.kind, message.text), intro, form].filter(Boolean),
  );
  user.focus();
}

// ---------------------------------------------------------------------------------------------
// Overview.

async function overviewPage() {
  const overview = await api("GET", "/v1/overview");
  const card = (id, label, value, extra, attention = false) =>
    h(
      "section",
      { class: attention ? "card card-attention" : "card", id, "aria-labelledby": `${id}-label` },
      h("h2", { id: `${id}-label`, class: "card-label" }, label),
      h("p", { class: "card-value" }, String(value)),
      extra,
    );
  const waiting = Number(overview.failures_waiting);
  return [
    h(
      "div",
      { class: "cards" },
      card(
        "stat-failures-waiting",
        "Failures waiting",
        overview.failures_waiting,
        h("a", { href: "#/failures?status=waiting" }, waiting > 0 ? "Review them" : "See all failures"),
        waiting > 0,
      ),
      card("stat-devices", "Devices", overview.devices, h("a", { href: "#/devices" }, "See devices")),
      card("stat-live-devices", "Live devices", overview.live_devices, h("p", { class: "muted" }, "Connected now")),
      card("stat-users", "Users", overview.users, h("a", { href: "#/users" }, "Manage users")),
    ),
    h(
      "section",
      { class: "section", "aria-labelledby": "syncs-heading" },
      h("h2", { id: "syncs-heading" }, "Syncs per minute"),
      syncChart(overview.syncs_per_minute ?? []),
    ),
    h(
      "section",
      { class: "section", "aria-labelledby": "server-heading" },
      h("h2", { id: "server-heading" }, "Server"),
      h(
        "dl",
        { class: "facts" },
        h("dt", {}, "Server version"),
        h("dd", { id: "server-version" }, h("code", {}, overview.server_version)),
        h("dt", {}, "Model version"),
        h("dd", { id: "model-version" }, h("code", {}, overview.model_version)),
        h("dt", {}, "Roles"),
        h("dd", {}, (overview.roles ?? []).join(", ") || "none"),
      ),
    ),
  ];
}

/** Syncs per minute as bars, with the numbers also as a table for those who cannot see it. */
function syncChart(minutes) {
  const counts = minutes.map(([, count]) => Number(count));
  const total = counts.reduce((sum, count) => sum + count, 0);
  const most = Math.max(1, ...counts);
  const width = 600;
  const height = 120;
  const step = width / Math.max(1, minutes.length);
  const svg = "http://www.w3.org/2000/svg";
  const node = (tag, attributes, ...children) => {
    const element = document.createElementNS(svg, tag);
    for (const [key, value] of Object.entries(attributes)) element.setAttribute(key, String(value));
    element.append(...children);
    return element;
  };
  const clock = (iso) => /T(\d{2}:\d{2})/.exec(iso)?.[1] ?? iso;
  const bars = minutes.map(([minute, count], index) => {
    const barHeight = (Number(count) / most) * (height - 8);
    const label = `${clock(minute)} UTC: ${count} ${plural(count, "sync", "syncs")}`;
    return node(
      "g",
      {},
      node("rect", { class: "chart-track", x: index * step + 1, y: 0, width: step - 2, height }),
      node("rect", {
        class: "chart-bar",
        x: index * step + 1,
        y: height - barHeight,
        width: step - 2,
        height: barHeight,
      }),
      node("title", {}, label),
    );
  });
  const description = `${total} ${plural(total, "sync", "syncs")} in the last ${minutes.length} minutes, at most ${Math.max(0, ...counts)} in one minute`;
  const chart = node(
    "svg",
    {
      class: "chart",
      viewBox: `0 0 ${width} ${height}`,
      preserveAspectRatio: "none",
      role: "img",
      "aria-label": description,
    },
    ...bars,
  );
  const first = minutes[0]?.[0];
  const rows = minutes.map(([minute, count]) =>
    h("tr", {}, h("td", {}, time(minute)), h("td", { class: "number" }, String(count))),
  );
  return h(
    "div",
    { class: "chart-box" },
    h("p", { id: "syncs-total" }, `${sentence(description)}.`),
    chart,
    h(
      "div",
      { class: "chart-axis", "aria-hidden": "true" },
      h("span", {}, first ? `${clock(first)} UTC` : ""),
      h("span", {}, "now"),
    ),
    h("details", {}, h("summary", {}, "The same as a table"), table("Syncs per minute", ["Minute", "Syncs"], rows)),
  );
}

// ---------------------------------------------------------------------------------------------
// Failures: the list, and one failure beside the object on the server, to correct and replay.

const FAILURE_STATES = { "": "Any", waiting: "Waiting", replayed: "Replayed" };

async function failuresPage({ params }) {
  const filters = {
    entity: params.get("entity") ?? "",
    user: params.get("user") ?? "",
    status: params.get("status") ?? "",
  };
  if (!(filters.status in FAILURE_STATES)) {
    throw new InputError("status", `expected waiting or replayed, found "${filters.status}"`);
  }
  const query = new URLSearchParams();
  if (filters.entity !== "") query.set("entity", filters.entity);
  if (filters.user !== "") query.set("user", filters.user);
  const search = query.size > 0 ? `?${query}` : "";
  const [list, model, users] = await Promise.all([
    api("GET", `/v1/failures${search}`),
    loadModel(),
    api("GET", "/v1/users"),
  ]);
  const failures = list.failures.filter((failure) => {
    if (filters.status === "waiting") return failure.replayed_at == null;
    if (filters.status === "replayed") return failure.replayed_at != null;
    return true;
  });

  const choice = (id, label, options, selected) => {
    const values = options.includes(selected) ? options : [...options, selected];
    return h(
      "div",
      { class: "field" },
      h("label", { for: id }, label),
      h(
        "select",
        { id, name: id },
        values.map((value) => h("option", { value, selected: value === selected }, value === "" ? "Any" : value)),
      ),
    );
  };
  const entityNames = ["", ...[...model.entities.keys()].sort()];
  const userNames = ["", ...users.users.map((user) => user.name)];
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter failures" },
    choice("filter-entity", "Entity", entityNames, filters.entity),
    choice("filter-user", "User", userNames, filters.user),
    h(
      "div",
      { class: "field" },
      h("label", { for: "filter-status" }, "Status"),
      h(
        "select",
        { id: "filter-status" },
        Object.entries(FAILURE_STATES).map(([value, label]) =>
          h("option", { value, selected: value === filters.status }, label),
        ),
      ),
    ),
    h(
      "div",
      { class: "actions" },
      h("button", { type: "submit" }, "Filter"),
      h("a", { href: "#/failures", class: "button-link" }, "Clear"),
    ),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const chosen = new URLSearchParams();
    for (const [key, id] of [
      ["entity", "filter-entity"],
      ["user", "filter-user"],
      ["status", "filter-status"],
    ]) {
      const value = form.querySelector(`#${id}`).value;
      if (value !== "") chosen.set(key, value);
    }
    const next = chosen.size > 0 ? `#/failures?${chosen}` : "#/failures";
    if (location.hash === next) render();
    else location.hash = next;
  });

  const rows = failures.map((failure) =>
    h(
      "tr",
      {},
      h(
        "td",
        {},
        h("a", { href: `#/failures/${failure.id}`, "aria-label": `Failure ${failure.id}` }, `#${failure.id}`),
      ),
      h("td", {}, failure.entity),
      h("td", {}, shortId(failure.object_id)),
      h("td", {}, failure.kind),
      h("td", {}, h("span", { class: "tag" }, failure.rejection)),
      h("td", { class: "reason" }, failure.reason),
      h("td", {}, failure.user),
      h("td", {}, time(failure.at)),
      h(
        "td",
        {},
        failure.replayed_at == null
          ? h("span", { class: "tag tag-waiting" }, "waiting")
          : h("span", { class: "tag tag-done" }, "replayed"),
      ),
    ),
  );
  const count = h(
    "p",
    { id: "failure-count", role: "status" },
    failures.length === 0
      ? "No failures match."
      : `${failures.length} ${plural(failures.length, "failure", "failures")}, newest first.`,
  );
  return [
    h(
      "p",
      {},
      "Changes the server rejected into SynchronizationError. Open one to compare it with the object on the server, correct its values and replay it.",
    ),
    form,
    count,
    failures.length === 0
      ? null
      : table(
          "Failures",
          ["Failure", "Entity", "Object", "Change", "Rejected as", "Reason", "User", "At", "Status"],
          rows,
        ),
  ];
}

async function failurePage({ match, outcome = null }) {
  const id = match[1];
  const [failure, model] = await Promise.all([api("GET", `/v1/failures/${id}`), loadModel()]);
  const entity = model.entities.get(failure.entity) ?? null;
  const waiting = failure.replayed_at == null;
  const editable = waiting && failure.kind !== "delete";
  const attempted = failure.attempted ?? {};
  const current = failure.current ?? null;
  // Members in the model's order, then any the model text did not name, alphabetically.
  const present = new Set([...Object.keys(attempted), ...Object.keys(current ?? {})]);
  const ordered = [...(entity?.members.keys() ?? [])].filter((member) => present.has(member));
  const members = [...ordered, ...[...present].filter((member) => !ordered.includes(member)).sort()];

  const fields = [];
  const rows = members.map((member, index) => {
    const inChange = Object.hasOwn(attempted, member);
    const type = memberType(entity, member, inChange ? attempted[member] : current?.[member]);
    const original = inChange ? valueText(attempted[member]) : "";
    const differs = inChange && current !== null && valueText(current[member]) !== original;
    const controlId = `value-${index}`;
    let cell;
    if (!inChange) cell = h("span", { class: "muted" }, "not in the change");
    else if (!editable) cell = showValue(attempted[member]);
    else {
      const problem = h("p", { class: "field-problem", id: `${controlId}-problem` });
      const control = valueControl(controlId, type, original);
      control.setAttribute("aria-describedby", problem.id);
      control.dataset.member = member;
      fields.push({ member, type, original, control, problem });
      cell = h("div", {}, control, problem);
    }
    const currentCell = current === null ? h("span", { class: "muted" }, "none") : showValue(current[member]);
    return h(
      "tr",
      { class: differs ? "differs" : null, "data-member": member },
      h(
        "th",
        { scope: "row" },
        inChange && editable ? h("label", { for: controlId }, member) : member,
        h("span", { class: "type" }, typeLabel(type)),
      ),
      h("td", { class: "attempted" }, cell),
      h("td", { class: "current" }, currentCell, differs ? h("span", { class: "tag tag-differs" }, "differs") : null),
    );
  });

  const summary = h(
    "dl",
    { class: "facts" },
    h("dt", {}, "Status"),
    h(
      "dd",
      { id: "failure-status" },
      waiting
        ? h("span", { class: "tag tag-waiting" }, "waiting for a replay")
        : h("span", {}, h("span", { class: "tag tag-done" }, "replayed"), " ", time(failure.replayed_at)),
    ),
    h("dt", {}, "Entity"),
    h("dd", {}, failure.entity),
    h("dt", {}, "Object"),
    h("dd", {}, h("code", {}, failure.object_id)),
    h("dt", {}, "Change"),
    h("dd", {}, failure.kind),
    h("dt", {}, "Rejected as"),
    h("dd", {}, failure.rejection),
    h("dt", {}, "Reason"),
    h("dd", { id: "failure-reason" }, failure.reason),
    h("dt", {}, "User"),
    h("dd", {}, failure.user),
    h("dt", {}, "Upload"),
    h("dd", {}, h("code", {}, failure.upload_id)),
    h("dt", {}, "At"),
    h("dd", {}, time(failure.at)),
  );

  const outcomeBox = h("div", { id: "replay-outcome" }, outcome === null ? null : outcomePanel(outcome));
  const valuesTable = table(
    "Attempted values beside the server's",
    ["Member", "Attempted", current === null ? "On the server (no object)" : "On the server now"],
    rows,
    "compare",
  );
  const absent =
    current === null
      ? h(
          "p",
          { id: "current-absent" },
          `The object does not exist on the server (current: none): replaying the ${failure.kind} makes it.`,
        )
      : null;
  const content = [
    h("p", {}, h("a", { href: "#/failures" }, "← All failures")),
    outcomeBox,
    summary,
    h("h2", {}, "Values"),
    absent,
  ];
  if (!waiting) {
    content.push(h("p", {}, "This failure was replayed; it stays as a record."), valuesTable);
    return content;
  }
  const problem = h("div", { class: "form-problem", "aria-live": "assertive" });
  const replay = h("button", { type: "submit" }, "Replay");
  const undo = h(
    "button",
    { type: "button", class: "button-quiet", onclick: () => resetFields(fields, problem) },
    "Undo edits",
  );
  const form = h(
    "form",
    { class: "replay-form", novalidate: true, "aria-label": `Replay failure ${id}` },
    h(
      "p",
      { class: "muted" },
      editable
        ? "Edit the attempted values to correct them: only the values you change are sent, the others are replayed as they were."
        : "A deletion has no values: replaying it deletes the object again.",
    ),
    valuesTable,
    problem,
    h("div", { class: "actions" }, replay, editable ? undo : null),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    replayFailure(id, fields, { replay, problem, outcomeBox });
  });
  content.push(form);
  return content;
}

/** A value shown as text: `empty` for none, a boolean or number as itself. */
function showValue(value) {
  if (value === null || value === undefined) return h("span", { class: "muted" }, "empty");
  return h("span", { class: "value" }, valueText(value));
}

/** The input of an attempted value: a list for enumerations and booleans, else text. */
function valueControl(id, type, original) {
  if (type.kind === "enumeration" || type.kind === "boolean") {
    const values = type.kind === "boolean" ? ["true", "false"] : type.values;
    const options = ["", ...values, ...(original !== "" && !values.includes(original) ? [original] : [])];
    return h(
      "select",
      { id },
      options.map((value) => h("option", { value, selected: value === original }, value === "" ? "(empty)" : value)),
    );
  }
  const inputmode = { integer: "numeric", decimal: "decimal" }[type.kind] ?? "text";
  return h("input", {
    id,
    type: "text",
    value: original,
    inputmode,
    placeholder: "empty",
    autocomplete: "off",
    spellcheck: "false",
  });
}

function resetFields(fields, problem) {
  for (const field of fields) {
    field.control.value = field.original;
    field.control.removeAttribute("aria-invalid");
    field.problem.replaceChildren();
  }
  problem.replaceChildren();
  fields[0]?.control.focus();
}

/** The corrections of the edited fields; fields that cannot be sent are marked, and nothing is. */
function corrections(fields) {
  const values = {};
  const invalid = [];
  for (const field of fields) {
    field.control.removeAttribute("aria-invalid");
    field.problem.replaceChildren();
    if (field.control.value === field.original) continue;
    try {
      values[field.member] = wireValue(field.member, field.type, field.control.value);
    } catch (error) {
      if (!(error instanceof InputError)) throw error;
      field.control.setAttribute("aria-invalid", "true");
      field.problem.textContent = sentence(error.message);
      invalid.push(field);
    }
  }
  return { values, invalid };
}

async function replayFailure(id, fields, { replay, problem, outcomeBox }) {
  problem.replaceChildren();
  const { values, invalid } = corrections(fields);
  if (invalid.length > 0) {
    const names = invalid.map((field) => field.member).join(", ");
    problem.replaceChildren(
      notice(
        "error",
        `Nothing was replayed: ${names} ${plural(invalid.length, "has a value", "have values")} the member cannot take (see below).`,
      ),
    );
    invalid[0].control.focus();
    return;
  }
  replay.disabled = true;
  replay.textContent = "Replaying…";
  const body = Object.keys(values).length > 0 ? { values } : undefined;
  try {
    const answer = await api("POST", `/v1/failures/${id}/replay`, body);
    const outcome = answer.outcome;
    if (outcome?.outcome === "failed") {
      // Nothing changed on the server: keep the operator's edits to correct them further.
      outcomeBox.replaceChildren(outcomePanel(outcome));
      outcomeBox.firstChild.focus();
      return;
    }
    // Applied or deleted: the failure is a record now, and the server's object changed.
    const match = /^\/failures\/(\d+)$/.exec(currentRoute().path);
    if (match === null || match[1] !== id) return;
    const ticket = ++renderTicket;
    const heading = main.querySelector("h1");
    const content = await failurePage({ match, outcome }).catch((error) => [outcomePanel(outcome), errorPanel(error)]);
    if (ticket !== renderTicket) return;
    main.replaceChildren(heading, ...content.filter(Boolean));
    main.querySelector("#replay-outcome > *")?.focus();
  } catch (error) {
    if (error instanceof SessionEnded)
      return showSignIn({ kind: "error", text: `Your session ended (${error.message}). Sign in again to go on.` });
    problem.replaceChildren(errorPanel(error));
  } finally {
    replay.disabled = false;
    replay.textContent = "Replay";
  }
}

/** What a replay did: applied (with the object's revision), deleted, or failed again (why). */
function outcomePanel(outcome) {
  const result = outcome?.outcome;
  if (result === "applied") {
    const revision = outcome.revision === undefined ? "" : ` (revision ${outcome.revision})`;
    return h(
      "div",
      { class: "panel panel-success", role: "status", tabindex: "-1" },
      h(
        "p",
        {},
        h("strong", {}, "Outcome: applied. "),
        `The change is on the server now${revision}, and devices receive it at their next sync.`,
      ),
    );
  }
  if (result === "deleted") {
    return h(
      "div",
      { class: "panel panel-success", role: "status", tabindex: "-1" },
      h("p", {}, h("strong", {}, "Outcome: deleted. "), "The object is gone from the server."),
    );
  }
  if (result === "failed") {
    const kind = outcome.kind ? ` (${outcome.kind})` : "";
    return h(
      "div",
      { class: "panel panel-error", role: "alert", tabindex: "-1" },
      h(
        "p",
        {},
        h("strong", {}, "Outcome: failed. "),
        `${sentence(outcome.reason ?? "the server gave no reason")}${kind}.`,
      ),
      h("p", {}, "The failure still waits: correct the values and replay it again."),
    );
  }
  return errorPanel(
    new ApiError(
      0,
      "bad-answer",
      `the server's answer to the replay has an unknown outcome: ${JSON.stringify(outcome)}`,
    ),
  );
}

// ---------------------------------------------------------------------------------------------
// Users: the list, roles, disabling and enabling, and a new user.

async function usersPage() {
  const [list, overview] = await Promise.all([api("GET", "/v1/users"), api("GET", "/v1/overview")]);
  const roles = overview.roles ?? [];
  const me = sessions.read()?.user;
  const rows = list.users.map((user, index) => {
    const editor = rolesEditor(user, roles, index);
    const toggle = h(
      "button",
      {
        type: "button",
        class: "button-quiet",
        "aria-label": `${user.disabled ? "Enable" : "Disable"} ${user.name}`,
        disabled: user.name === me,
        title: user.name === me ? "You cannot disable yourself here" : null,
        onclick: () => setDisabled(user, !user.disabled, toggle),
      },
      user.disabled ? "Enable" : "Disable",
    );
    return h(
      "tr",
      { "data-user": user.name },
      h("th", { scope: "row" }, user.name, user.name === me ? h("span", { class: "muted" }, " (you)") : null),
      h(
        "td",
        { class: "roles" },
        user.roles.length === 0 ? h("span", { class: "muted" }, "none") : user.roles.join(", "),
      ),
      h(
        "td",
        {},
        user.disabled
          ? h("span", { class: "tag tag-waiting" }, "disabled")
          : h("span", { class: "tag tag-done" }, "active"),
      ),
      h("td", { class: "wide" }, h("div", { class: "user-actions" }, editor, toggle)),
    );
  });
  return [
    h(
      "p",
      {},
      "Everyone who may sign in to this server. A disabled user cannot sign in, and their sessions end at once.",
    ),
    table("Users", ["Name", "Roles", "Status", "Actions"], rows),
    newUserForm(roles),
  ];
}

function rolesEditor(user, roles, index) {
  const boxes = roles.map((role, at) => {
    const id = `roles-${index}-${at}`;
    return h(
      "div",
      { class: "check" },
      h("input", { type: "checkbox", id, value: role, checked: user.roles.includes(role) }),
      h("label", { for: id }, role),
    );
  });
  const problem = h("div", { class: "form-problem", "aria-live": "assertive" });
  const save = h("button", { type: "submit" }, "Save roles");
  const form = h(
    "form",
    { class: "roles-form" },
    h("fieldset", {}, h("legend", {}, `Roles of ${user.name}`), boxes),
    save,
    problem,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll("input[type=checkbox]:checked")].map((box) => box.value);
    save.disabled = true;
    try {
      const updated = await api("PUT", `/v1/users/${encodeURIComponent(user.name)}/roles`, { roles: chosen });
      const text =
        updated.roles.length === 0
          ? `${updated.name} has no role now: their sessions ended.`
          : `${updated.name} has ${plural(updated.roles.length, "the role", "the roles")} ${updated.roles.join(", ")} now.`;
      await render({ kind: "success", text });
    } catch (error) {
      if (error instanceof SessionEnded)
        return showSignIn({ kind: "error", text: `Your session ended (${error.message}). Sign in again to go on.` });
      problem.replaceChildren(errorPanel(error));
      save.disabled = false;
    }
  });
  return h(
    "details",
    { class: "roles-editor" },
    h("summary", { "aria-label": `Set roles of ${user.name}` }, "Set roles"),
    form,
  );
}

async function setDisabled(user, disabled, button) {
  button.disabled = true;
  try {
    await api("PUT", `/v1/users/${encodeURIComponent(user.name)}/disabled`, { disabled });
    const text = disabled
      ? `${user.name} is disabled: they cannot sign in, and their sessions ended.`
      : `${user.name} is enabled: they can sign in again.`;
    await render({ kind: "success", text });
  } catch (error) {
    if (error instanceof SessionEnded)
      return showSignIn({ kind: "error", text: `Your session ended (${error.message}). Sign in again to go on.` });
    await render({
      kind: "error",
      text: `${user.name} was not ${disabled ? "disabled" : "enabled"}: ${error.message}`,
    });
  }
}

function newUserForm(roles) {
  const name = h("input", {
    id: "new-user-name",
    name: "name",
    autocomplete: "off",
    autocapitalize: "none",
    spellcheck: "false",
  });
  const password = h("input", {
    id: "new-user-password",
    name: "password",
    type: "password",
    autocomplete: "new-password",
  });
  const boxes = roles.map((role, at) => {
    const id = `new-user-role-${at}`;
    return h(
      "div",
      { class: "check" },
      h("input", { type: "checkbox", id, value: role }),
      h("label", { for: id }, role),
    );
  });
  const problem = h("div", { class: "form-problem", "aria-live": "assertive" });
  const add = h("button", { type: "submit" }, "Add user");
  const form = h(
    "form",
    { class: "card-form", novalidate: true, "aria-labelledby": "new-user-heading" },
    h("h2", { id: "new-user-heading" }, "Add a user"),
    h("div", { class: "field" }, h("label", { for: name.id }, "Name"), name),
    h(
      "div",
      { class: "field" },
      h("label", { for: password.id }, "Password"),
      password,
      h("p", { class: "muted" }, "They sign in with it on their devices."),
    ),
    h("fieldset", {}, h("legend", {}, "Roles"), boxes),
    h("div", { class: "actions" }, add),
    problem,
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const chosen = [...form.querySelectorAll("input[type=checkbox]:checked")].map((box) => box.value);
    const missing =
      name.value.trim() === ""
        ? [name, "Name: enter the new user's name"]
        : password.value === ""
          ? [password, "Password: enter a password for the new user"]
          : chosen.length === 0
            ? [form.querySelector("input[type=checkbox]"), "Roles: choose at least one role for the new user"]
            : null;
    if (missing !== null) {
      problem.replaceChildren(notice("error", missing[1]));
      missing[0]?.focus();
      return;
    }
    add.disabled = true;
    problem.replaceChildren();
    try {
      const created = await api("POST", "/v1/users", {
        name: name.value.trim(),
        password: password.value,
        roles: chosen,
      });
      await render({
        kind: "success",
        text: `${created.name} was added with ${plural(created.roles.length, "the role", "the roles")} ${created.roles.join(", ")}.`,
      });
    } catch (error) {
      if (error instanceof SessionEnded)
        return showSignIn({ kind: "error", text: `Your session ended (${error.message}). Sign in again to go on.` });
      problem.replaceChildren(errorPanel(error));
      add.disabled = false;
      name.focus();
    }
  });
  return h("section", { class: "section" }, form);
}

// ---------------------------------------------------------------------------------------------
// History and devices.

async function historyPage() {
  const { entries } = await api("GET", "/v1/history");
  const rows = entries.map((entry) =>
    h(
      "tr",
      { class: Number(entry.errors) > 0 ? "has-errors" : null },
      h("td", {}, time(entry.at)),
      h("td", {}, entry.user),
      h("td", { class: "wide" }, h("code", {}, entry.device === "" ? "—" : entry.device)),
      h("td", {}, entry.mode),
      h("td", {}, entry.upload_id === "" ? h("span", { class: "muted" }, "none") : shortId(entry.upload_id)),
      h("td", { class: "number" }, `${entry.duration_ms} ms`),
      h("td", { class: "number" }, String(entry.objects_up)),
      h("td", { class: "number" }, String(entry.objects_down)),
      h("td", { class: "number" }, String(entry.errors)),
    ),
  );
  return [
    h(
      "p",
      {},
      "Each sync a device completed, and each upload as the server applied it (mode ",
      h("code", {}, "upload"),
      "), newest first.",
    ),
    h(
      "p",
      { role: "status" },
      entries.length === 0 ? "No syncs yet." : `${entries.length} ${plural(entries.length, "entry", "entries")}.`,
    ),
    entries.length === 0
      ? null
      : table(
          "Synchronization history",
          ["At", "User", "Device", "Mode", "Upload", "Duration", "Objects up", "Objects down", "Errors"],
          rows,
        ),
  ];
}

async function devicesPage() {
  const { devices } = await api("GET", "/v1/devices");
  const rows = devices.map((device) =>
    h(
      "tr",
      {},
      h("td", {}, device.user),
      h("td", { class: "wide" }, h("code", {}, device.device)),
      h("td", { class: "number" }, String(device.syncs)),
      h("td", {}, time(device.last_sync_at)),
      h("td", {}, device.last_mode),
    ),
  );
  return [
    h("p", {}, "Each device that reported a sync, with its user, most recent first."),
    h(
      "p",
      { role: "status" },
      devices.length === 0
        ? "No device has synced yet."
        : `${devices.length} ${plural(devices.length, "device", "devices")}.`,
    ),
    devices.length === 0 ? null : table("Devices", ["User", "Device", "Syncs", "Last sync", "Last mode"], rows),
  ];
}

// ---------------------------------------------------------------------------------------------
// Start: the skip link, the router, and a message instead of a blank page on any surprise.

document.querySelector(".skip-link")?.addEventListener("click", (event) => {
  // The hash is the route, so the link moves focus instead of the address.
  event.preventDefault();
  (main.querySelector("h1") ?? main).focus();
});
window.addEventListener("hashchange", () => render());
// A surprise still shows a message on the page; the browser reports it as well.
window.addEventListener("error", (event) => main.append(errorPanel(event.error ?? event.message)));
window.addEventListener("unhandledrejection", (event) => main.append(errorPanel(event.reason)));
render();
