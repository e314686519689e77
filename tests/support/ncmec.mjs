// A stand-in for NCMEC's CyberTipline ESP reporting API, for the tests,
// written from NCMEC's ESP API documentation: HTTP Basic auth; XML answers
// (<reportResponse> with responseCode, responseDescription, reportId,
// fileId, hash; <reportDoneResponse> for finish and retract);
//
//   GET  /status                       who is calling
//   POST /submit    text/xml <report>  -> reportId
//   POST /upload    multipart id, file -> fileId, hash (MD5)
//   POST /fileinfo  text/xml <fileDetails> for an uploaded file
//   POST /finish    multipart id       -> the report is filed (5102 if it was already)
//   POST /retract   multipart id       -> the report is withdrawn (5101 if it was already)
//
// Documents are checked the way NCMEC's schema does it: required elements
// present, and every element's children in the schema's sequence order (an
// element out of order is a 4100 "validation failed"). The stand-in can be
// told to fail at a step: `failAt(step, { times, mode })`, mode "http500"
// (a 500 with code 1000), "code1000" (HTTP 200, server error code),
// "reject" (4100), or "drop" (do the step, then cut the connection before
// answering: the caller never learns it succeeded).

import { createServer } from "node:http";
import { createHash, randomBytes } from "node:crypto";

/** The sequences of the schema for the elements hashgate writes. */
export const SCHEMA = {
  report: ["incidentSummary", "internetDetails", "lawEnforcement", "reporter", "personOrUserReported", "intendedRecipient", "victim", "additionalInfo"],
  incidentSummary: ["incidentType", "escalateToHighPriority", "reportAnnotations", "incidentDateTime", "incidentDateTimeDescription"],
  internetDetails: ["webPageIncident", "emailIncident", "newsgroupIncident", "chatImIncident", "onlineGamingIncident", "cellPhoneIncident", "nonInternetIncident", "peer2peerIncident"],
  webPageIncident: ["url", "additionalInfo", "thirdPartyHostedContent"],
  reporter: ["reportingPerson", "contactPerson", "companyTemplate", "termsOfService", "legalURL"],
  reportingPerson: ["firstName", "lastName", "phone", "email", "address"],
  personOrUserReported: ["personOrUserReportedPerson", "espIdentifier", "espService", "screenName", "displayName", "profileUrl", "ipCaptureEvent", "deviceId", "thirdPartyUserReported", "priorCTReports", "groupIdentifier", "accountTemporarilyDisabled", "accountPermanentlyDisabled", "estimatedLocation", "additionalInfo"],
  ipCaptureEvent: ["ipAddress", "eventName", "dateTime", "possibleProxy", "port"],
  fileDetails: ["reportId", "fileId", "originalFileName", "locationOfFile", "fileViewedByEsp", "exifViewedByEsp", "publiclyAvailable", "fileRelevance", "fileAnnotations", "industryClassification", "originalFileHash", "ipCaptureEvent", "deviceId", "details", "additionalInfo"],
};

/** Required children (by parent). */
const REQUIRED = {
  report: ["incidentSummary", "reporter"],
  incidentSummary: ["incidentType", "incidentDateTime"],
  reporter: ["reportingPerson"],
  reportingPerson: ["email"],
  webPageIncident: ["url"],
  ipCaptureEvent: ["ipAddress"],
  fileDetails: ["reportId", "fileId"],
};

const ENTITIES = { lt: "<", gt: ">", amp: "&", quot: '"', apos: "'" };
const decode = (s) =>
  s.replace(/&(lt|gt|amp|quot|apos|#x[0-9a-fA-F]+|#[0-9]+);/g, (_, e) =>
    e[0] === "#" ? String.fromCodePoint(e[1] === "x" ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10)) : ENTITIES[e],
  );

/** Parses a small XML document into {name, attrs, children, text}. Throws on malformed input. */
export function parseXml(text) {
  let i = 0;
  const root = { name: "#document", attrs: {}, children: [], text: "" };
  const stack = [root];
  while (i < text.length) {
    const lt = text.indexOf("<", i);
    if (lt < 0) {
      if (text.slice(i).trim()) throw new Error("text after the root element");
      break;
    }
    const chunk = text.slice(i, lt);
    if (chunk.trim() || stack.length > 1) stack.at(-1).text += decode(chunk);
    if (text.startsWith("<?", lt)) {
      i = text.indexOf("?>", lt) + 2;
      continue;
    }
    if (text.startsWith("<!--", lt)) {
      i = text.indexOf("-->", lt) + 3;
      continue;
    }
    const gt = text.indexOf(">", lt);
    if (gt < 0) throw new Error("unterminated tag");
    const tag = text.slice(lt + 1, gt);
    i = gt + 1;
    if (tag.startsWith("/")) {
      const node = stack.pop();
      if (node.name !== tag.slice(1).trim()) throw new Error(`</${tag.slice(1)}> closes <${node.name}>`);
      continue;
    }
    const selfClosing = tag.endsWith("/");
    const body = selfClosing ? tag.slice(0, -1) : tag;
    const name = body.trim().split(/\s+/)[0];
    const attrs = {};
    for (const m of body.matchAll(/([\w:.-]+)\s*=\s*"([^"]*)"/g)) attrs[m[1]] = decode(m[2]);
    const node = { name, attrs, children: [], text: "" };
    stack.at(-1).children.push(node);
    if (!selfClosing) stack.push(node);
  }
  if (stack.length !== 1) throw new Error(`<${stack.at(-1).name}> is not closed`);
  if (root.children.length !== 1) throw new Error("not one root element");
  return root.children[0];
}

/** Schema problems of an element tree: order, unknown and missing children. */
export function schemaProblems(node, path = node.name) {
  const problems = [];
  const order = SCHEMA[node.name];
  if (order) {
    let last = -1;
    for (const child of node.children) {
      const at = order.indexOf(child.name);
      if (at < 0) problems.push(`${path}: unexpected <${child.name}>`);
      else if (at < last) problems.push(`${path}: <${child.name}> is out of order (after <${order[last]}>)`);
      else last = at;
    }
  }
  for (const required of REQUIRED[node.name] ?? []) {
    const child = node.children.find((c) => c.name === required);
    if (!child || (!child.children.length && !child.text.trim())) problems.push(`${path}: <${required}> is required`);
  }
  for (const child of node.children) problems.push(...schemaProblems(child, `${path}/${child.name}`));
  return problems;
}

/** The text of the first descendant named `name`. */
export function find(node, name) {
  if (node.name === name) return node;
  for (const c of node.children) {
    const f = find(c, name);
    if (f) return f;
  }
  return null;
}

const xmlText = (s) => String(s).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");

function answer(res, status, root, fields) {
  const body =
    `<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<${root}>` +
    Object.entries(fields)
      .filter(([, v]) => v !== undefined)
      .map(([k, v]) => (Array.isArray(v) ? `<${k}>${v.map((f) => `<fileId>${xmlText(f)}</fileId>`).join("")}</${k}>` : `<${k}>${xmlText(v)}</${k}>`))
      .join("") +
    `</${root}>\n`;
  res.writeHead(status, { "content-type": "application/xml" });
  res.end(body);
}

/**
 * Starts the stand-in on 127.0.0.1 (a free port).
 * @returns {Promise<{url, calls, reports, failAt, reset, close, finishedFor}>}
 */
export async function startNcmec({ username = "esp-user", password = "esp-pass" } = {}) {
  const calls = [];
  const reports = new Map();
  let nextReport = 1000;
  let faults = {};

  const server = createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const raw = Buffer.concat(chunks);
    const path = new URL(req.url, "http://x").pathname.replace(/^\/ispws/, "");
    const step = path.slice(1);
    const call = { step, method: req.method, at: Date.now(), headers: req.headers };
    calls.push(call);

    const expected = "Basic " + Buffer.from(`${username}:${password}`).toString("base64");
    if (req.headers.authorization !== expected) {
      call.result = "unauthorized";
      return answer(res, 401, "reportResponse", { responseCode: 2000, responseDescription: "Authentication required" });
    }

    const fault = faults[step];
    let drop = false;
    if (fault && fault.times > 0) {
      fault.times -= 1;
      call.fault = fault.mode;
      if (fault.mode === "http500") return answer(res, 500, "reportResponse", { responseCode: 1000, responseDescription: "Server error" });
      if (fault.mode === "code1000") return answer(res, 200, "reportResponse", { responseCode: 1000, responseDescription: "Server error" });
      if (fault.mode === "reject") return answer(res, 400, "reportResponse", { responseCode: 4100, responseDescription: "Validation failed" });
      if (fault.mode === "drop") drop = true;
    }
    const reply = (status, root, fields) => {
      if (drop) {
        call.result = `${call.result ?? "ok"} (answer dropped)`;
        return res.socket.destroy();
      }
      answer(res, status, root, fields);
    };

    const form = async () => {
      const request = new Request("http://x/", { method: "POST", headers: { "content-type": req.headers["content-type"] ?? "" }, body: raw });
      return request.formData();
    };
    const invalid = (problems) => {
      call.result = "invalid";
      call.problems = problems;
      return reply(400, "reportResponse", { responseCode: 4100, responseDescription: `Validation failed: ${problems.join("; ")}` });
    };

    try {
      if (step === "status" && req.method === "GET") {
        return reply(200, "reportResponse", { responseCode: 0, responseDescription: `Remote User : ${username}` });
      }
      if (req.method !== "POST") return reply(405, "reportResponse", { responseCode: 4000, responseDescription: "Invalid request" });

      if (step === "submit") {
        let doc;
        try {
          doc = parseXml(raw.toString("utf8"));
        } catch (e) {
          call.result = "malformed";
          return reply(400, "reportResponse", { responseCode: 4110, responseDescription: `Malformed XML submittal: ${e.message}` });
        }
        if (doc.name !== "report") return invalid([`root is <${doc.name}>, not <report>`]);
        const problems = schemaProblems(doc);
        if (problems.length) return invalid(problems);
        const id = String(nextReport++);
        reports.set(id, { id, xml: raw.toString("utf8"), doc, files: [], state: "open" });
        call.reportId = id;
        call.result = "ok";
        return reply(200, "reportResponse", { responseCode: 0, responseDescription: "Success", reportId: id });
      }

      if (step === "upload") {
        const data = await form();
        const id = data.get("id");
        const file = data.get("file");
        const report = reports.get(String(id));
        call.reportId = id;
        if (!report) return reply(400, "reportResponse", { responseCode: 5001, responseDescription: "Report does not exist" });
        if (report.state !== "open") return reply(400, "reportResponse", { responseCode: 5102, responseDescription: "Report already finished" });
        if (!file || typeof file === "string") return reply(400, "reportResponse", { responseCode: 4200, responseDescription: "Malformed file submittal" });
        const bytes = Buffer.from(await file.arrayBuffer());
        const fileId = randomBytes(16).toString("hex");
        const md5 = createHash("md5").update(bytes).digest("hex");
        report.files.push({ fileId, name: file.name, type: file.type, bytes, details: null });
        call.fileId = fileId;
        call.result = "ok";
        return reply(200, "reportResponse", { responseCode: 0, responseDescription: "Success", reportId: id, fileId, hash: md5 });
      }

      if (step === "fileinfo") {
        let doc;
        try {
          doc = parseXml(raw.toString("utf8"));
        } catch (e) {
          call.result = "malformed";
          return reply(400, "reportResponse", { responseCode: 4110, responseDescription: `Malformed XML submittal: ${e.message}` });
        }
        if (doc.name !== "fileDetails") return invalid([`root is <${doc.name}>, not <fileDetails>`]);
        const problems = schemaProblems(doc);
        if (problems.length) return invalid(problems);
        const id = find(doc, "reportId").text.trim();
        const fileId = find(doc, "fileId").text.trim();
        const report = reports.get(id);
        call.reportId = id;
        call.fileId = fileId;
        if (!report) return reply(400, "reportResponse", { responseCode: 5001, responseDescription: "Report does not exist" });
        const file = report.files.find((f) => f.fileId === fileId);
        if (!file) return reply(400, "reportResponse", { responseCode: 5002, responseDescription: "File does not exist" });
        file.details = { xml: raw.toString("utf8"), doc };
        call.result = "ok";
        return reply(200, "reportResponse", { responseCode: 0, responseDescription: "Success", reportId: id });
      }

      if (step === "finish" || step === "retract") {
        const id = String((await form()).get("id"));
        const report = reports.get(id);
        call.reportId = id;
        if (!report) return reply(400, "reportDoneResponse", { responseCode: 5001, responseDescription: "Report does not exist" });
        if (report.state === "finished") return reply(400, "reportDoneResponse", { responseCode: 5102, responseDescription: "Report already finished", reportId: id });
        if (report.state === "retracted") return reply(400, "reportDoneResponse", { responseCode: 5101, responseDescription: "Report already retracted", reportId: id });
        report.state = step === "finish" ? "finished" : "retracted";
        call.result = "ok";
        return reply(200, "reportDoneResponse", { responseCode: 0, reportId: id, files: report.files.map((f) => f.fileId) });
      }
      return reply(404, "reportResponse", { responseCode: 4000, responseDescription: "Invalid request" });
    } catch (e) {
      call.result = `error ${e.message}`;
      return reply(500, "reportResponse", { responseCode: 1000, responseDescription: "Server error" });
    }
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/ispws`,
    username,
    password,
    calls,
    reports,
    /** Fail the next `times` calls of `step` (submit, upload, fileinfo, finish, retract). */
    failAt(step, { times = 1, mode = "http500" } = {}) {
      faults[step] = { times, mode };
    },
    reset() {
      faults = {};
    },
    /** The reports whose document names `incident` (hashgate writes its key into additionalInfo). */
    reportsFor(incident) {
      return [...reports.values()].filter((r) => r.xml.includes(incident));
    },
    close: () => new Promise((r) => server.close(r)),
  };
}
