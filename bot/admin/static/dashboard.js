// The organizer dashboard: a static page that calls the admin API with the token typed in at login.
// The token lives in sessionStorage (this tab only, never in the URL); every value from the API is put
// into the page with textContent, never as HTML, because registrants choose their own names.
"use strict";

const TOKEN_KEY = "eventbot-admin-token";
const REPORT_KEY = "eventbot-last-broadcast";
const PAGE_SIZE = 20;
const POLL_MS = 1000;
const SVG_NS = "http://www.w3.org/2000/svg";
const MAX_BAR_WIDTH = 36;

const STATUS_LABELS = { confirmed: "已确认", waitlisted: "候补", cancelled: "已取消" };
const ATTENDANCE_LABELS = { onsite: "现场", online: "线上" };
const AUDIENCE_LABELS = {
  confirmed: "已确认报名",
  onsite: "现场参加",
  online: "线上观看",
  waitlisted: "候补名单",
  checked_in: "已签到",
  not_checked_in: "已确认但未签到",
  all_registrants: "全部报名者",
};
const BROADCAST_STATUS_LABELS = {
  scheduled: "已排期",
  sending: "发送中",
  sent: "已完成",
  paused: "已暂停（账号级错误）",
  cancelled: "已取消",
  skipped: "已跳过（错过发送时间）",
};
const REMINDER_STATE_LABELS = { scheduled: "待发送", skipped: "已跳过" };
// A finished send is labelled by what arrived: 已送达 only when everyone received it.
const OUTCOME_LABELS = { pending: "发送中", delivered: "已送达", partly: "部分送达", none: "未送达" };
const CHANNEL_LABELS = { template: "模板消息", subscribe: "订阅通知", customer_service: "客服消息" };
const FINISHED_BROADCAST = new Set(["sent", "cancelled", "skipped"]);

const DESK_LIST_SIZE = 30;
const DESK_RECENT_SIZE = 5;
const SEARCH_DELAY_MS = 250;

const state = {
  events: [], eventId: null, page: 1, total: 0, timezone: "Asia/Shanghai", pollTimer: null, searchTimer: null,
  // The desk's event: the one taking place today (the event clock's day), else the one the organizer picks.
  deskEventId: null, today: null,
  // Numbers of the latest list requests: an older answer arriving late is dropped.
  registrationsRequest: 0, deskRequest: 0,
};

const $ = (id) => document.getElementById(id);

class ApiError extends Error {
  constructor(status, detail) {
    super(detail);
    this.status = status;
  }
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) || "";
}

async function api(path, options = {}) {
  const headers = { Authorization: `Bearer ${token()}`, ...(options.headers || {}) };
  if (options.json !== undefined) {
    headers["Content-Type"] = "application/json";
    options = { ...options, body: JSON.stringify(options.json) };
  }
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) {
    logout("令牌无效或已更换，请重新登录。");
    throw new ApiError(401, "unauthorised");
  }
  if (!response.ok) {
    let detail = response.statusText;
    try {
      detail = String((await response.json()).detail || detail); // Chinese, naming the field for a 422
    } catch (error) {
      // not JSON: keep the status text
    }
    throw new ApiError(response.status, detail);
  }
  return response;
}

const getJson = async (path) => (await api(path)).json();

function formatTime(iso) {
  if (!iso) return "";
  return new Date(iso).toLocaleString("zh-CN", { timeZone: state.timezone, hour12: false });
}

// "2023年3月20日" for the API's date of today (a calendar date: no timezone to apply).
function formatDay(isoDate) {
  return new Date(`${isoDate}T00:00:00Z`).toLocaleDateString("zh-CN", { timeZone: "UTC", dateStyle: "long" });
}

// "14:05" in the bot's timezone: enough at the door, where everything happens today.
function formatClock(iso) {
  return new Date(iso).toLocaleTimeString("zh-CN", { timeZone: state.timezone, hour: "2-digit", minute: "2-digit", hour12: false });
}

function element(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  if (className) node.className = className;
  return node;
}

function eventPath(suffix = "", eventId = state.eventId) {
  return `/admin/api/events/${encodeURIComponent(eventId)}${suffix}`;
}

const deskPath = (suffix) => eventPath(suffix, state.deskEventId);

// ---- login ---------------------------------------------------------------------------------------

async function login(event) {
  event.preventDefault();
  const candidate = $("token").value.trim();
  $("login-error").textContent = "";
  const response = await fetch("/admin/api/events", { headers: { Authorization: `Bearer ${candidate}` } });
  if (response.status === 503) {
    $("login-error").textContent = "管理接口未启用：服务器没有设置 ADMIN_TOKEN。";
    return;
  }
  if (!response.ok) {
    $("login-error").textContent = "令牌不正确。";
    return;
  }
  sessionStorage.setItem(TOKEN_KEY, candidate);
  $("token").value = "";
  await showApp();
}

function logout(message) {
  sessionStorage.removeItem(TOKEN_KEY);
  clearTimeout(state.pollTimer);
  $("app").hidden = true;
  $("logout").hidden = true;
  $("login").hidden = false;
  $("login-error").textContent = message || "";
}

async function showApp() {
  $("login").hidden = true;
  $("app").hidden = false;
  $("logout").hidden = false;
  await loadEvents();
  await loadQrCodes();
  const lastBroadcast = sessionStorage.getItem(REPORT_KEY);
  if (lastBroadcast) watchBroadcast(lastBroadcast);
}

// ---- events --------------------------------------------------------------------------------------

async function loadEvents() {
  const data = await getJson("/admin/api/events");
  state.events = data.items;
  state.today = data.today;
  if (!state.events.some((item) => item.id === state.eventId)) {
    const current = state.events.find((item) => item.current) || state.events[0];
    state.eventId = current ? current.id : null;
  }
  if (!state.events.some((item) => item.id === state.deskEventId)) {
    const today = state.events.find((item) => item.today);
    state.deskEventId = today ? today.id : null;
  }
  renderEventCards();
  renderAudienceOptions();
  updateSendAtHint();
  renderDeskChoice();
  renderDeskFigures();
  if (state.eventId) {
    await Promise.all([loadRegistrations(), loadReminders(), loadInbox(), loadHistory(), loadDesk()]);
  }
}

function currentEvent() {
  return state.events.find((item) => item.id === state.eventId);
}

function renderEventCards() {
  const container = $("event-cards");
  container.replaceChildren();
  for (const item of state.events) {
    state.timezone = item.timezone || state.timezone;
    const card = element("article", undefined, item.id === state.eventId ? "card selected" : "card");
    card.setAttribute("aria-label", item.title);
    const heading = element("h3");
    const choose = element("button", item.name || item.title, "link");
    choose.type = "button";
    choose.setAttribute("aria-pressed", String(item.id === state.eventId));
    choose.addEventListener("click", () => selectEvent(item.id));
    heading.append(choose);
    card.append(heading, element("p", `${formatTime(item.starts_at)} · ${item.venue}`, "muted"));
    const counts = element("dl", undefined, "counts");
    const figures = [
      ["现场", `${item.onsite.confirmed} / ${item.capacity}`],
      ["剩余座位", item.onsite.left],
      ["线上", item.online.confirmed],
      ["候补", item.onsite.waitlisted],
      ["已取消", item.counts.cancelled],
      ["已签到", item.checked_in],
    ];
    if (item.onsite.walk_ins) figures.splice(2, 0, ["现场补登", item.onsite.walk_ins]);
    for (const [label, value] of figures) {
      const pair = element("div");
      pair.append(element("dt", label), element("dd", value));
      counts.append(pair);
    }
    card.append(counts, dailyChart(item.registrations_per_day), channelList(item.by_channel));
    container.append(card);
  }
  const selected = currentEvent();
  $("current-event-name").textContent = selected ? `· ${selected.name || selected.title}` : "";
}

function dailyChart(days) {
  const figure = element("figure", undefined, "chart");
  const caption = element("figcaption", "每日报名人数");
  const width = 320;
  const height = 120;
  const svg = document.createElementNS(SVG_NS, "svg");
  svg.setAttribute("viewBox", `0 0 ${width} ${height + 20}`);
  svg.setAttribute("role", "img");
  svg.setAttribute("aria-label", days.length ? days.map((d) => `${d.date}：${d.count} 人`).join("，") : "暂无报名");
  const peak = Math.max(1, ...days.map((d) => d.count));
  const slot = width / Math.max(days.length, 1);
  const barWidth = Math.min(slot * 0.7, MAX_BAR_WIDTH);
  days.forEach((day, index) => {
    const barHeight = Math.round((day.count / peak) * (height - 16));
    const bar = document.createElementNS(SVG_NS, "rect");
    bar.setAttribute("x", String(index * slot + (slot - barWidth) / 2));
    bar.setAttribute("y", String(height - barHeight));
    bar.setAttribute("width", String(barWidth));
    bar.setAttribute("height", String(barHeight));
    bar.setAttribute("class", "bar");
    const value = document.createElementNS(SVG_NS, "text");
    value.setAttribute("x", String(index * slot + slot / 2));
    value.setAttribute("y", String(height - barHeight - 3));
    value.setAttribute("text-anchor", "middle");
    value.textContent = String(day.count);
    const label = document.createElementNS(SVG_NS, "text");
    label.setAttribute("x", String(index * slot + slot / 2));
    label.setAttribute("y", String(height + 14));
    label.setAttribute("text-anchor", "middle");
    label.textContent = day.date.slice(5);
    svg.append(bar, value, label);
  });
  figure.append(svg, caption);
  return figure;
}

function channelList(channels) {
  const wrap = element("div", undefined, "channels");
  wrap.append(element("h4", "报名渠道"));
  const list = element("ul");
  for (const entry of channels) {
    list.append(element("li", `${entry.channel || "直接关注"}：${entry.count}`));
  }
  if (!channels.length) list.append(element("li", "暂无"));
  wrap.append(list);
  return wrap;
}

async function selectEvent(eventId) {
  state.eventId = eventId;
  state.page = 1;
  renderEventCards();
  renderAudienceOptions();
  await Promise.all([loadRegistrations(), loadReminders(), loadInbox(), loadHistory(), loadQrCodes()]);
}

// ---- registrations -------------------------------------------------------------------------------

function registrationQuery(extra = {}) {
  const params = new URLSearchParams();
  const q = $("search").value.trim();
  if (q) params.set("q", q);
  if ($("status-filter").value) params.set("status", $("status-filter").value);
  if ($("checkin-filter").value) params.set("checked_in", $("checkin-filter").value);
  if ($("attendance-filter").value) params.set("attendance", $("attendance-filter").value);
  for (const [key, value] of Object.entries(extra)) params.set(key, String(value));
  return params.toString();
}

async function loadRegistrations() {
  const request = ++state.registrationsRequest;
  const data = await getJson(eventPath(`/registrations?${registrationQuery({ page: state.page, page_size: PAGE_SIZE })}`));
  if (request !== state.registrationsRequest) return; // a newer search went out meanwhile: its answer wins
  state.total = data.total;
  const body = $("registrations-table").querySelector("tbody");
  body.replaceChildren();
  for (const item of data.items) {
    const row = element("tr");
    row.dataset.id = item.id;
    const cells = [
      item.name,
      phoneCell(item),
      item.company,
      item.title,
      STATUS_LABELS[item.status] + (item.position ? `（第 ${item.position} 位）` : ""),
      ATTENDANCE_LABELS[item.attendance],
      item.checkin_code,
      channelLabel(item),
      formatTime(item.created_at),
    ];
    for (const value of cells) row.append(value instanceof Node ? value : element("td", value));
    const action = element("td");
    if (item.checked_in_at) {
      action.textContent = `已签到 ${formatTime(item.checked_in_at)}`;
    } else if (item.status === "confirmed") {
      const button = element("button", "签到");
      button.type = "button";
      button.setAttribute("aria-label", `为 ${item.name || item.checkin_code} 签到`);
      button.addEventListener("click", () => checkIn(eventPath(`/registrations/${item.id}/checkin`)));
      action.append(button);
    }
    row.append(action);
    body.append(row);
  }
  const pages = Math.max(1, Math.ceil(state.total / PAGE_SIZE));
  $("registrations-caption").textContent = `报名记录，共 ${state.total} 条`;
  $("page-info").textContent = `第 ${state.page} / ${pages} 页`;
  $("prev-page").disabled = state.page <= 1;
  $("next-page").disabled = state.page >= pages;
}

function channelLabel(item) {
  if (item.walk_in) return "现场补登";
  return item.channel || "";
}

// The list shows phones masked; 查看 asks the server for one full number, which records who looked.
// A phone another registration of the event also gives is flagged (two people may share one).
function phoneCell(item) {
  const cell = element("td", item.phone || "");
  if (!item.phone) return cell;
  if (item.phone_shared) {
    const flag = element("span", "重复", "tag shared");
    flag.title = "本活动另有报名使用同一手机号";
    cell.append(" ", flag);
  }
  const button = element("button", "查看");
  button.type = "button";
  button.setAttribute("aria-label", `查看 ${item.name || item.checkin_code} 的完整手机号（会记录在审计日志中）`);
  button.addEventListener("click", async () => {
    try {
      const revealed = await getJson(eventPath(`/registrations/${item.id}/phone`));
      cell.textContent = revealed.phone || "";
    } catch (error) {
      if (error.status !== 401) $("registrations-message").textContent = `无法查看手机号：${error.message}`;
    }
  });
  cell.append(" ", button);
  return cell;
}

// Check someone in and say so where the organizer is looking: the list's message line or the desk's.
// A registrant who chose the livestream gets the API's warning: no seat was kept for them.
async function checkIn(path, json, messageId = "registrations-message") {
  const message = $(messageId);
  try {
    const response = await api(path, { method: "POST", json });
    const item = await response.json();
    const who = item.name || item.checkin_code;
    const done = item.already ? `${who} 之前已经签到过了。` : `${who} 签到成功。`;
    message.textContent = item.warning ? `${done}${item.warning}` : done;
    message.className = item.warning ? "warning" : "";
    await loadEvents();
  } catch (error) {
    if (error.status !== 401) {
      message.textContent = `签到失败：${error.message}`;
      message.className = "error";
    }
  }
}

async function download(extension) {
  const response = await api(eventPath(`/registrations.${extension}?${registrationQuery()}`));
  saveBlob(await response.blob(), `registrations-${state.eventId}.${extension}`);
}

function saveBlob(blob, filename) {
  const link = element("a");
  link.href = URL.createObjectURL(blob);
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
}

// ---- broadcasts ----------------------------------------------------------------------------------

function renderAudienceOptions() {
  const select = $("audience");
  const chosen = select.value || "confirmed";
  select.replaceChildren();
  const sizes = (currentEvent() || {}).audiences || {};
  for (const [key, label] of Object.entries(AUDIENCE_LABELS)) {
    const option = element("option", `${label}（${sizes[key] ?? 0} 人）`);
    option.value = key;
    select.append(option);
  }
  select.value = chosen;
  updateAudiencePreview();
}

function audienceSize() {
  const sizes = (currentEvent() || {}).audiences || {};
  return sizes[$("audience").value] ?? 0;
}

function updateAudiencePreview() {
  $("audience-preview").textContent = `将发送给 ${audienceSize()} 人。`;
}

// The picker gives a wall-clock time without a zone ("2023-03-26T13:00"); the organizer means the event's
// zone, whatever the browser's own. Intl knows the zones' offsets; a static page has no date library.
function zoneOffset(instant) {
  const name = new Intl.DateTimeFormat("en-US", { timeZone: state.timezone, timeZoneName: "longOffset" })
    .formatToParts(instant).find((part) => part.type === "timeZoneName").value;
  return name === "GMT" ? "+00:00" : name.slice(3); // "GMT+08:00" → "+08:00"
}

// The picked time as ISO 8601 with the event zone's offset at that moment ("2023-03-26T13:00:00+08:00").
function sendAtValue() {
  const picked = $("send-at").value;
  if (!picked) return "";
  const wallAsUtc = new Date(`${picked}:00Z`);
  const minutes = (offset) => (offset[0] === "-" ? -1 : 1) * (Number(offset.slice(1, 3)) * 60 + Number(offset.slice(4, 6)));
  const instant = new Date(wallAsUtc.getTime() - minutes(zoneOffset(wallAsUtc)) * 60000);
  return `${picked}:00${zoneOffset(instant)}`;
}

// "中国标准时间": the event zone's name in Chinese.
function zoneName() {
  return new Intl.DateTimeFormat("zh-CN", { timeZone: state.timezone, timeZoneName: "long" })
    .formatToParts(new Date()).find((part) => part.type === "timeZoneName").value;
}

// "2023年3月26日星期日 13:00（中国标准时间）" for the picked wall-clock time.
function describeSendAt() {
  const wall = new Date(`${$("send-at").value}:00Z`);
  return `${wall.toLocaleString("zh-CN", { timeZone: "UTC", dateStyle: "full", timeStyle: "short" })}（${zoneName()}）`;
}

function updateSendAtHint() {
  $("send-at-hint").textContent = $("send-at").value
    ? `将于 ${describeSendAt()}发送。`
    : `留空则立即发送；时间按活动所在地（${zoneName()}）计算。`;
}

function broadcastRequest() {
  const request = { event_id: state.eventId, audience: $("audience").value, text: $("broadcast-text").value.trim() };
  if (sendAtValue()) request.send_at = sendAtValue();
  return request;
}

function previewBroadcast(event) {
  event.preventDefault();
  const request = broadcastRequest();
  const when = request.send_at ? `于 ${describeSendAt()}` : "立即";
  $("confirm-question").textContent = `确认${when}发送给「${AUDIENCE_LABELS[request.audience]}」共 ${audienceSize()} 人？`;
  $("confirm-preview").textContent = request.text;
  $("broadcast-error").textContent = "";
  $("broadcast-confirm").hidden = false;
  $("confirm-send").focus();
}

async function sendBroadcast() {
  $("broadcast-confirm").hidden = true;
  try {
    const response = await api("/admin/api/broadcasts", { method: "POST", json: broadcastRequest() });
    const created = await response.json();
    $("broadcast-text").value = "";
    $("send-at").value = "";
    updateSendAtHint();
    sessionStorage.setItem(REPORT_KEY, String(created.id));
    watchBroadcast(created.id);
  } catch (error) {
    if (error.status !== 401) $("broadcast-error").textContent = `发送失败：${error.message}`;
  }
}

function watchBroadcast(id) {
  clearTimeout(state.pollTimer);
  const poll = async () => {
    let report;
    try {
      report = await getJson(`/admin/api/broadcasts/${encodeURIComponent(id)}`);
    } catch (error) {
      if (error.status === 404) {
        sessionStorage.removeItem(REPORT_KEY);
      } else if (error.status !== 401) {
        $("broadcast-error").textContent = `读取发送报告失败：${error.message}，稍后重试。`;
        state.pollTimer = setTimeout(poll, POLL_MS);
      }
      return;
    }
    $("broadcast-error").textContent = "";
    renderReport(report);
    if (!FINISHED_BROADCAST.has(report.status)) state.pollTimer = setTimeout(poll, POLL_MS);
    else await loadEvents();
    await loadHistory();
  };
  poll();
}

function renderReport(report) {
  $("broadcast-report").hidden = false;
  $("report-id").textContent = `#${report.id}`;
  const when = report.send_at ? `，计划于 ${formatTime(report.send_at)}` : "";
  const label = report.status === "sent" ? OUTCOME_LABELS[report.report.outcome] : BROADCAST_STATUS_LABELS[report.status];
  const outcome = report.report.recipients ? `：${report.report.delivered}/${report.report.recipients} 人收到` : "";
  $("report-status").textContent = `${label || report.status}${when}${outcome}（共 ${report.recipients} 人）`;
  for (const outcome of ["sent", "failed", "unreachable", "pending"]) {
    $(`report-${outcome}`).textContent = String(report.counts?.[outcome] ?? 0);
  }
  const errors = $("report-errors");
  errors.replaceChildren();
  if (report.skip_reason) errors.append(element("li", `未发送：${report.skip_reason}`));
  if (report.paused_errcode) {
    errors.append(element("li", `发送已暂停：微信错误码 ${report.paused_errcode}（${report.paused_reason || ""}），处理后运行 eventbot send --resume`));
  }
  for (const line of missedLines(report.report)) errors.append(element("li", line));
  $("cancel-broadcast").hidden = report.status !== "scheduled";
  $("cancel-broadcast").dataset.id = report.id;
}

async function cancelBroadcast() {
  const id = $("cancel-broadcast").dataset.id;
  try {
    await api(`/admin/api/broadcasts/${encodeURIComponent(id)}`, { method: "DELETE" });
    watchBroadcast(id);
  } catch (error) {
    if (error.status !== 401) $("broadcast-error").textContent = `取消失败：${error.message}`;
  }
}

async function loadHistory() {
  const data = await getJson(`/admin/api/broadcasts?event_id=${encodeURIComponent(state.eventId)}`);
  const list = $("broadcast-history");
  list.replaceChildren();
  for (const item of data.items) {
    const entry = element("li");
    const when = item.send_at ? `计划 ${formatTime(item.send_at)}` : `创建 ${formatTime(item.created_at)}`;
    const finished = item.finished_at ? `，完成 ${formatTime(item.finished_at)}` : "";
    entry.append(
      element("strong", `#${item.id} ${BROADCAST_STATUS_LABELS[item.status] || item.status}`),
      element("span", ` · ${AUDIENCE_LABELS[item.audience] || item.audience}（${item.recipients} 人）· ${when}${finished}`, "muted"),
      element("blockquote", item.text),
      element("p", item.report.summary),
    );
    if (item.skip_reason) entry.append(element("p", `未发送：${item.skip_reason}`, "error"));
    for (const line of missedLines(item.report)) entry.append(element("p", line));
    const show = element("button", "查看报告", "secondary");
    show.type = "button";
    show.addEventListener("click", () => watchBroadcast(item.id));
    entry.append(show);
    list.append(entry);
  }
  if (!data.items.length) list.append(element("li", "还没有群发过。", "muted"));
}

// ---- QR codes ------------------------------------------------------------------------------------

async function loadQrCodes() {
  const list = $("qr-codes");
  list.replaceChildren();
  $("qr-error").textContent = "";
  const channels = await getJson(`/admin/api/qr/channels?event_id=${encodeURIComponent(state.eventId)}`);
  const codes = [{ title: "签到二维码", detail: "到场扫码签到", path: eventPath("/checkin-qr.png"), file: `checkin-${state.eventId}.png` }];
  for (const item of channels.items) {
    codes.push({
      title: `渠道：${item.channel}`,
      detail: `经此渠道报名 ${item.registrations} 人`,
      path: `/admin/api/qr/channels/${encodeURIComponent(item.channel)}.png`,
      file: `channel-${item.channel}.png`,
    });
  }
  for (const code of codes) {
    const entry = element("li", undefined, "qr-code");
    const download = element("button", "下载 PNG", "secondary");
    download.type = "button";
    download.setAttribute("aria-label", `下载${code.title}`);
    download.addEventListener("click", () => downloadQr(code));
    entry.append(element("strong", code.title), element("span", code.detail, "muted"), download);
    list.append(entry);
  }
}

async function downloadQr(code) {
  $("qr-error").textContent = "";
  try {
    saveBlob(await (await api(code.path)).blob(), code.file);
  } catch (error) {
    if (error.status !== 401) $("qr-error").textContent = `生成二维码失败：${error.message}`;
  }
}

// ---- check-in desk -------------------------------------------------------------------------------

function showView(desk) {
  $("desk").hidden = !desk;
  $("overview").hidden = desk;
  $("show-desk").setAttribute("aria-pressed", String(desk));
  $("show-overview").setAttribute("aria-pressed", String(!desk));
  if (desk) $("desk-search").focus();
  else loadQrCodes();
}

// The event whose people the desk lists; on a day without one, the organizer picks it.
function renderDeskChoice() {
  const heldToday = state.events.some((item) => item.today);
  $("desk-no-event").hidden = heldToday;
  $("desk-no-event").textContent = heldToday ? "" : `今天（${formatDay(state.today)}）没有活动，请选择要签到的活动。`;
  const placeholder = element("option", "请选择活动");
  placeholder.value = "";
  const select = $("desk-event");
  select.replaceChildren(placeholder);
  for (const item of state.events) {
    const day = new Date(item.starts_at).toLocaleDateString("zh-CN", { timeZone: state.timezone, month: "long", day: "numeric" });
    const option = element("option", `${item.name || item.title}（${item.today ? "今天" : day}）`);
    option.value = item.id;
    select.append(option);
  }
  select.value = state.deskEventId || "";
  $("desk-work").hidden = !state.deskEventId;
}

function pickDeskEvent() {
  state.deskEventId = $("desk-event").value || null;
  renderDeskChoice();
  renderDeskFigures();
  loadDesk();
}

function renderDeskFigures() {
  const item = state.events.find((event) => event.id === state.deskEventId);
  $("desk-event-name").textContent = item ? `· ${item.name || item.title}` : "";
  if (!item) return;
  const walkIns = item.onsite.walk_ins ? `（含现场补登 ${item.onsite.walk_ins}）` : "";
  $("desk-figures").textContent =
    `已签到 ${item.checked_in} 人${walkIns} · 现场 ${item.onsite.confirmed + item.onsite.walk_ins} / ${item.capacity}，剩余 ${item.onsite.left} 座 · 线上 ${item.online.confirmed}`;
}

function deskButton(label, name, action) {
  const button = element("button", label);
  button.type = "button";
  button.setAttribute("aria-label", `${label}：${name}`);
  button.addEventListener("click", action);
  return button;
}

function deskEntry(item) {
  const name = item.name || item.checkin_code;
  const entry = element("li", undefined, `desk-entry ${item.status}`);
  const who = element("div", undefined, "who");
  const phone = item.phone ? ` · 尾号 ${item.phone.slice(-4)}` : "";
  who.append(element("strong", name), element("span", `${item.checkin_code}${phone}`, "muted"));
  const tags = element("div", undefined, "tags");
  tags.append(element("span", STATUS_LABELS[item.status] + (item.position ? ` 第 ${item.position} 位` : ""), "tag"));
  tags.append(element("span", item.walk_in ? "现场补登" : ATTENDANCE_LABELS[item.attendance], `tag ${item.attendance}`));
  if (item.checked_in_at) tags.append(element("span", `已签到 ${formatClock(item.checked_in_at)}`, "tag arrived"));
  const actions = element("div", undefined, "actions");
  if (item.status === "confirmed" && !item.checked_in_at) {
    actions.append(deskButton("签到", name, () => checkIn(deskPath(`/registrations/${item.id}/checkin`), undefined, "desk-message")));
  }
  if (item.checked_in_at) {
    actions.append(deskButton("撤销签到", name, () => deskAction(item, "DELETE", "checkin", `已撤销 ${name} 的签到。`)));
  }
  if (item.status !== "cancelled") {
    const cancel = deskButton("取消报名", name, () => {
      if (window.confirm(`确定取消 ${name} 的报名吗？空出的名额会自动给候补第一位。`)) {
        deskAction(item, "POST", "cancel", `已取消 ${name} 的报名。`);
      }
    });
    cancel.className = "danger";
    actions.append(cancel);
  }
  entry.append(who, tags, actions);
  return entry;
}

async function deskAction(item, method, action, done) {
  try {
    const response = await api(deskPath(`/registrations/${item.id}/${action}`), { method });
    const body = await response.json();
    const promoted = (body.promoted || []).map((person) => person.name || person.checkin_code);
    $("desk-message").textContent = promoted.length ? `${done}候补 ${promoted.join("、")} 已获得名额并收到通知。` : done;
    $("desk-message").className = "";
    await loadEvents();
  } catch (error) {
    if (error.status !== 401) {
      $("desk-message").textContent = `操作失败：${error.message}`;
      $("desk-message").className = "error";
    }
  }
}

async function loadDesk() {
  if (!state.deskEventId) return;
  const params = new URLSearchParams({ page_size: DESK_LIST_SIZE });
  const q = $("desk-search").value.trim();
  if (q) params.set("q", q);
  const recent = new URLSearchParams({ checked_in: "true", order: "checked_in", page_size: DESK_RECENT_SIZE });
  const request = ++state.deskRequest;
  const [found, arrived] = await Promise.all([
    getJson(deskPath(`/registrations?${params}`)),
    getJson(deskPath(`/registrations?${recent}`)),
  ]);
  if (request !== state.deskRequest) return; // typed on meanwhile: the newer search's answer wins
  $("desk-list").replaceChildren(...found.items.map(deskEntry));
  if (!found.items.length) $("desk-list").append(element("li", q ? "没有找到，请换个关键词，或添加现场补登。" : "还没有人报名。", "muted"));
  $("desk-count").textContent = found.total > found.items.length ? `共 ${found.total} 人，显示前 ${found.items.length} 人` : `共 ${found.total} 人`;
  $("desk-recent").replaceChildren(
    ...arrived.items.map((item) => element("li", `${formatClock(item.checked_in_at)} ${item.name || item.checkin_code}${item.attendance === "online" ? "（线上报名）" : ""}`)),
  );
  if (!arrived.items.length) $("desk-recent").append(element("li", "还没有人签到。", "muted"));
}

async function addWalkIn(event) {
  event.preventDefault();
  const json = { name: $("walk-in-name").value.trim(), phone: $("walk-in-phone").value.trim() };
  try {
    const response = await api(deskPath("/walk-ins"), { method: "POST", json });
    const item = await response.json();
    $("desk-message").textContent = `已添加现场补登 ${item.name} 并签到。`;
    $("desk-message").className = "";
    $("walk-in-name").value = "";
    $("walk-in-phone").value = "";
    await loadEvents();
  } catch (error) {
    if (error.status !== 401) {
      $("desk-message").textContent = `添加失败：${error.message}`;
      $("desk-message").className = "error";
    }
  }
}

// ---- reminders -----------------------------------------------------------------------------------

// Who a finished send missed and why, by name (organizers only see this page).
function missedLines(report) {
  return (report ? report.missed : []).map((missed) => `未送达 ${missed.name || "（未填姓名）"}：${missed.reason}`);
}

// Before a reminder is sent: how many confirmed registrants it could reach now, and by which channel.
function reachText(reach) {
  const total = Object.values(reach).reduce((sum, count) => sum + count, 0);
  const unreachable = reach.unreachable || 0;
  const channels = Object.entries(reach)
    .filter(([channel]) => channel !== "unreachable")
    .map(([channel, count]) => `${CHANNEL_LABELS[channel] || channel} ${count}`);
  const by = channels.length ? `（${channels.join("，")}）` : "";
  return `现在可送达 ${total - unreachable}/${total} 人${by}` + (unreachable ? `，${unreachable} 人无法送达` : "");
}

async function loadReminders() {
  const data = await getJson(eventPath("/reminders"));
  $("reminders-warning").textContent = data.warning || "";
  const body = $("reminders-table").querySelector("tbody");
  body.replaceChildren();
  for (const item of data.items) {
    const row = element("tr");
    const stateText = item.report
      ? OUTCOME_LABELS[item.report.outcome]
      : (REMINDER_STATE_LABELS[item.state] || item.state) + (item.reason ? `（${item.reason}）` : "");
    const detail = element("td");
    if (item.report) {
      detail.append(element("p", item.report.summary));
      const missed = element("ul");
      for (const line of missedLines(item.report)) missed.append(element("li", line));
      detail.append(missed);
    } else if (item.reachable_now) {
      detail.textContent = reachText(item.reachable_now);
    }
    const offset = item.offset === "start" ? "开始时（直播链接）" : item.offset;
    for (const value of [offset, formatTime(item.due_at), stateText]) row.append(element("td", value));
    row.append(detail);
    body.append(row);
  }
  if (!data.items.length) {
    const row = element("tr");
    const cell = element("td", "未配置提醒");
    cell.colSpan = 4;
    row.append(cell);
    body.append(row);
  }
}

// ---- inbox ----------------------------------------------------------------------------------------

const DELIVERY_LABELS = { pending: "待发送", sending: "发送中", sent: "已送达", failed: "发送失败", unreachable: "无法送达（超过 48 小时）" };

function answerCell(group) {
  const form = element("form");
  const input = element("input");
  input.type = "text";
  input.required = true;
  input.setAttribute("aria-label", `回答：${group.text}`);
  form.append(input, element("button", "回答并发送"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const response = await api(`/admin/api/inbox/${group.id}/answer`, { method: "POST", json: { text: input.value } });
      const result = await response.json();
      $("inbox-message").textContent = `已回答 ${result.answered} 位提问者。把下面的规则加入 config.toml，以后自动回答：`;
      $("inbox-rule").textContent = result.rule_toml;
      $("inbox-rule").hidden = false;
      await loadInbox();
    } catch (error) {
      $("inbox-message").textContent = `回答失败：${error.message}`;
    }
  });
  const cell = element("td");
  cell.append(form);
  return cell;
}

async function loadInbox() {
  const data = await getJson("/admin/api/inbox");
  const open = $("inbox-table").querySelector("tbody");
  open.replaceChildren();
  for (const group of data.open) {
    const row = element("tr");
    for (const value of [group.text, group.askers, formatTime(group.first_asked_at)]) row.append(element("td", value));
    row.append(answerCell(group));
    open.append(row);
  }
  const answered = $("inbox-answered").querySelector("tbody");
  answered.replaceChildren();
  for (const item of data.answered) {
    const row = element("tr");
    for (const value of [item.text, item.answer, DELIVERY_LABELS[item.delivery] || item.delivery || ""]) {
      row.append(element("td", value));
    }
    answered.append(row);
  }
}

// ---- wiring --------------------------------------------------------------------------------------

document.addEventListener("DOMContentLoaded", () => {
  $("login-form").addEventListener("submit", login);
  $("logout").addEventListener("click", () => logout());
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    state.page = 1;
    loadRegistrations();
  });
  $("status-filter").addEventListener("change", () => { state.page = 1; loadRegistrations(); });
  $("checkin-filter").addEventListener("change", () => { state.page = 1; loadRegistrations(); });
  $("prev-page").addEventListener("click", () => { state.page -= 1; loadRegistrations(); });
  $("next-page").addEventListener("click", () => { state.page += 1; loadRegistrations(); });
  $("attendance-filter").addEventListener("change", () => { state.page = 1; loadRegistrations(); });
  $("download-csv").addEventListener("click", () => download("csv"));
  $("download-xlsx").addEventListener("click", () => download("xlsx"));
  $("show-desk").addEventListener("click", () => showView(true));
  $("show-overview").addEventListener("click", () => showView(false));
  $("desk-event").addEventListener("change", pickDeskEvent);
  $("desk-search-form").addEventListener("submit", (event) => { event.preventDefault(); loadDesk(); });
  $("desk-search").addEventListener("input", () => {
    clearTimeout(state.searchTimer);
    state.searchTimer = setTimeout(loadDesk, SEARCH_DELAY_MS);
  });
  $("walk-in-form").addEventListener("submit", addWalkIn);
  $("checkin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const code = $("checkin-code").value.trim();
    if (code) checkIn(eventPath("/checkin"), { code });
    $("checkin-code").value = "";
  });
  $("audience").addEventListener("change", updateAudiencePreview);
  $("send-at").addEventListener("input", updateSendAtHint);
  $("broadcast-form").addEventListener("submit", previewBroadcast);
  $("confirm-send").addEventListener("click", sendBroadcast);
  $("abort-send").addEventListener("click", () => { $("broadcast-confirm").hidden = true; });
  $("cancel-broadcast").addEventListener("click", cancelBroadcast);
  if (token()) showApp().catch(() => logout());
});
