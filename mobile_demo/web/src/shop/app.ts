/**
 * The live page: a small mock shop whose visitor's scrolling, taps and page visits are encoded in
 * the page by the TypeScript port, scored with onnxruntime-web (WebAssembly, one thread, files
 * served by the shop itself), shown live, and posted - scores only, signed - to the endpoint.
 *
 * On load the bundle's signature is checked against the trusted key, each file against its
 * sha256, and the golden cases run through this encoder and artifact (the device's self-test);
 * a bundle failing any of it is refused and nothing is scored. window.dipnShop exposes the event
 * log (what the device took, and each score in order) for tests and for a curious reader.
 */
import { openBundle } from "../bundle.js";
import type { BundleSource } from "../bundle.js";
import { Device } from "../device.js";
import type { Score, ViewEvent } from "../device.js";
import type { RawEvent } from "../encoder.js";
import { encodeCase, selfTest } from "../golden.js";
import { OrtScorer } from "../scorer.js";
import type { OrtModule } from "../scorer.js";
import { SCORES_PATH, Uplink, signedHeaders, signedPath } from "../wire.js";
import type { DeviceIdentity } from "../wire.js";
import { deviceIdentity, forgetIdentity } from "./identity.js";
import { BUTTONS, PAGES, catalog } from "./catalog.js";
import type { Product } from "./catalog.js";

type OrtWeb = typeof import("onnxruntime-web/wasm");

interface ShopConfig {
  publicKeyPem: string;
  precision: string;
  endpoint: string;
  bundle: string;
  ortModule: string;
  ortWasm: string;
  user: { user_id: string; history: Record<string, number>; profile: Record<string, number> };
}

type LogEntry = ({ kind: "event" } & ViewEvent) | ({ kind: "score"; posted: boolean } & Score);

interface ShopState {
  ready: boolean;
  error: string | null;
  screen: [number, number];
  user: ShopConfig["user"];
  modelVersion: string;
  precision: string;
  artifact: string;
  signer: string | null;
  deviceId: string;
  runtime: string;
  selfTest: { cases: number; maxAbsDiff: number } | null;
  log: LogEntry[];
  posted: number;
  uplinkError: () => string | null;
  acknowledged: () => number;
  /** Inference latency (ms) of `repeat` calls on the golden case with full views (benchmarks). */
  benchmark: (repeat: number) => Promise<number[]>;
}

declare global {
  interface Window {
    dipnShop: ShopState;
  }
}

const state: ShopState = {
  ready: false, error: null, screen: [window.innerWidth, window.innerHeight], user: { user_id: "", history: {}, profile: {} },
  modelVersion: "", precision: "", artifact: "", signer: null, deviceId: "", runtime: "", selfTest: null, log: [], posted: 0,
  uplinkError: () => null, acknowledged: () => 0, benchmark: async () => [],
};
window.dipnShop = state;

function element<K extends keyof HTMLElementTagNameMap>(tag: K, attrs: Record<string, string> = {}, ...children: (Node | string)[]): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  node.append(...children);
  return node;
}

function byId(id: string): HTMLElement {
  const node = document.getElementById(id);
  if (node === null) throw new Error(`the page has no #${id}`);
  return node;
}

function fetchSource(base: string): BundleSource {
  return {
    async read(path: string): Promise<Uint8Array | null> {
      const response = await fetch(new URL(path, new URL(base, window.location.href)));
      if (response.status === 404) return null;
      if (!response.ok) throw new Error(`${path}: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    },
  };
}

// ---- what the visitor sees ----------------------------------------------------------------------
interface Visit {
  page: string;
  route: string;
  openedAt: number;
  product: Product | null;
}

class Shop {
  private visit: Visit | null = null;
  private readonly cart: Product[] = [];
  private wheel: { start: number; x: number; y: number; dy: number; dx: number; timer: number } | null = null;
  private moments: Promise<unknown> = Promise.resolve();

  constructor(private readonly device: Device, private readonly products: Product[], private readonly userId: string) {}

  start(now: number): void {
    document.addEventListener("click", (e) => this.onClick(e), true);
    document.addEventListener("wheel", (e) => this.onWheel(e), { passive: true });
    window.setInterval(() => void this.device.tick(Date.now()), 1000);
    this.go("#/", now, []);
  }

  /** One moment's events to the device (late records first: they belong to earlier moments), after
   * the idle ticks due strictly before them (as the replay drives its phones' timers). */
  private send(events: ViewEvent[]): void {
    const ordered = [...events].sort((a, b) => Number(a.event["ts"]) - Number(b.event["ts"]));
    const first = Number(ordered[0]?.event["ts"]);
    this.moments = this.moments
      .then(() => (Number.isFinite(first) ? this.device.tick(first - 1) : []))
      .then(() => this.device.onEvents(ordered)).catch((error: unknown) => {
      state.error = String(error);
      render.status(`error: ${String(error)}`);
    });
  }

  private swipe(ts: number, type: string, extra: Record<string, number | null> = {}): ViewEvent {
    const [w, h] = state.screen;
    const event: Record<string, string | number | null> = {
      user_id: this.userId, ts, type, page: this.visit?.page ?? PAGES.home, x: null, y: null, x0: null, y0: null, x1: null,
      y1: null, duration_ms: null, screen_w: w, screen_h: h, ...extra,
    };
    return { view: "swipe", event };
  }

  private browse(ts: number, action: string, product: Product | null, page: string, stay: number | null): ViewEvent {
    const event: RawEvent = {
      user_id: this.userId, ts, action, leaf_category: action === "search" ? null : product?.leaf ?? null,
      top_category: product?.top ?? null, page, stay_ms: stay,
    };
    return { view: "browse", event };
  }

  /** Leave the current page and open the one at `route`, with the events of the tap that did it. */
  private go(route: string, ts: number, tapEvents: ViewEvent[]): void {
    const events = [...tapEvents];
    const old = this.visit;
    if (old !== null) {
      events.push(this.swipe(ts, "leave_page"));
      events.push(this.browse(old.openedAt, "browse", old.product, old.page, ts - old.openedAt));
    }
    this.visit = route_(route, ts, this.products);
    events.push(this.swipe(ts, "open_page"));
    events.push({ view: "tap", event: { user_id: this.userId, ts, event: "page", page: this.visit.page, button: null } });
    this.send(events);
    window.history.replaceState(null, "", route);
    render.page(this.visit, this.products, this.cart);
  }

  private onClick(e: MouseEvent): void {
    const ts = Date.now();
    const x = Math.min(Math.max(e.clientX, 0), state.screen[0]);
    const y = Math.min(Math.max(e.clientY, 0), state.screen[1]);
    const events: ViewEvent[] = [this.swipe(ts, "tap", { x, y })];
    const target = (e.target as HTMLElement | null)?.closest<HTMLElement>("[data-button]");
    if (target === null || target === undefined || this.visit === null) {
      this.send(events);
      return;
    }
    e.preventDefault();
    const button = target.dataset["button"] ?? "";
    const page = this.visit.page;
    events.push({ view: "tap", event: { user_id: this.userId, ts, event: "button", page, button } });
    const product = this.visit.product;
    const action = target.dataset["action"];
    if (action === "cart" && product !== null) {
      this.cart.push(product);
      events.push(this.browse(ts, "cart", product, page, null));
    } else if (action === "collect" && product !== null) {
      events.push(this.browse(ts, "collect", product, page, null));
    } else if (action === "purchase") {
      for (const item of this.cart.splice(0)) events.push(this.browse(ts, "purchase", item, page, null));
    } else if (action === "search") {
      events.push(this.browse(ts, "search", null, page, null));
    }
    const route = target.dataset["route"];
    if (route !== undefined) this.go(route, ts, events);
    else {
      this.send(events);
      render.page(this.visit, this.products, this.cart);
    }
  }

  /** A run of wheel events is one swipe: the finger moves against the scroll. */
  private onWheel(e: WheelEvent): void {
    const now = Date.now();
    if (this.wheel === null) this.wheel = { start: now, x: e.clientX, y: e.clientY, dy: 0, dx: 0, timer: 0 };
    const wheel = this.wheel;
    wheel.dy += e.deltaY;
    wheel.dx += e.deltaX;
    window.clearTimeout(wheel.timer);
    wheel.timer = window.setTimeout(() => {
      this.wheel = null;
      const [w, h] = state.screen;
      const ts = Date.now();
      const clamp = (v: number, extent: number) => Math.min(Math.max(Math.round(v * 10) / 10, 0), extent);
      this.send([this.swipe(ts, "swipe", {
        x0: clamp(wheel.x, w), y0: clamp(wheel.y, h), x1: clamp(wheel.x - wheel.dx, w), y1: clamp(wheel.y - wheel.dy, h),
        duration_ms: Math.max(ts - wheel.start, 1),
      })]);
    }, 150);
  }
}

function route_(route: string, ts: number, products: Product[]): Visit {
  const detail = route.match(/^#\/p\/(\d+)$/);
  if (detail !== null) return { page: PAGES.detail, route, openedAt: ts, product: products[Number(detail[1])] ?? null };
  const page = { "#/cart": PAGES.cart, "#/checkout": PAGES.checkout, "#/paid": PAGES.paid, "#/search": PAGES.search }[route] ?? PAGES.home;
  return { page, route, openedAt: ts, product: null };
}

const money = (cents: number) => `$${(cents / 100).toFixed(2)}`;

const render = {
  status(text: string): void {
    byId("status").textContent = text;
  },

  score(score: Score, posted: boolean): void {
    for (const [id, p] of [["p-realtime", score.p_realtime], ["p-longterm", score.p_longterm]] as const) {
      byId(id).textContent = p.toFixed(4);
      (byId(`${id}-bar`) as HTMLElement).style.width = `${(p * 100).toFixed(1)}%`;
    }
    byId("score-meta").textContent = `${score.trigger} at ${new Date(score.ts).toISOString().slice(11, 23)} - ` +
      `${score.latency_ms.toFixed(1)} ms - ${posted ? "posted" : "not posted (policy)"} - ${state.posted} posted`;
  },

  page(visit: Visit, products: Product[], cart: Product[]): void {
    const main = byId("main");
    main.replaceChildren();
    const nav = element("nav", {}, element("a", { href: "#/", "data-button": BUTTONS.home, "data-route": "#/" }, "Home"),
      element("a", { href: "#/search", "data-button": BUTTONS.search, "data-route": "#/search", "data-action": "search" }, "Search"),
      element("a", { href: "#/cart", "data-button": BUTTONS.cart, "data-route": "#/cart", id: "cart-link" }, `Cart (${cart.length})`));
    main.append(nav);
    const card = (p: Product) => element("a", { class: "card", href: `#/p/${p.id}`, "data-button": BUTTONS.item, "data-route": `#/p/${p.id}`, id: `product-${p.id}` },
      element("div", { class: "thumb" }, p.name.slice(0, 1)), element("div", {}, p.name), element("div", { class: "price" }, money(p.priceCents)),
      element("div", { class: "category" }, `${p.top} / ${p.leaf}`));
    if (visit.product !== null) {
      const p = visit.product;
      main.append(element("section", { class: "detail" },
        element("div", { class: "hero" }, p.name.slice(0, 1)),
        element("h2", {}, p.name), element("p", { class: "price" }, money(p.priceCents)),
        element("p", {}, `Category ${p.top} / ${p.leaf}. A product of the mock shop; every tap and scroll here is encoded in this page and scored by the model, and only the scores leave it.`),
        element("button", { id: "add-to-cart", "data-button": BUTTONS.addToCart, "data-action": "cart" }, "Add to cart"),
        element("button", { id: "favorite", "data-button": BUTTONS.favorite, "data-action": "collect" }, "Favorite"),
        element("button", { id: "buy-now", "data-button": BUTTONS.buyNow, "data-route": "#/checkout", "data-action": "cart" }, "Buy now"),
        element("h3", {}, "Similar items"),
        element("div", { class: "grid" }, ...products.filter((q) => q.id !== p.id).slice(0, 6).map(card))));
    } else if (visit.page === PAGES.cart) {
      main.append(element("section", {}, element("h2", {}, "Cart"),
        ...cart.map((p) => element("p", {}, `${p.name} - ${money(p.priceCents)}`)),
        element("button", { id: "checkout", "data-button": BUTTONS.checkout, "data-route": "#/checkout" }, "Checkout")));
    } else if (visit.page === PAGES.checkout) {
      main.append(element("section", {}, element("h2", {}, "Checkout"), element("p", {}, `${cart.length} item(s)`),
        element("button", { id: "submit-order", "data-button": BUTTONS.submitOrder, "data-route": "#/paid", "data-action": "purchase" }, "Submit order")));
    } else if (visit.page === PAGES.paid) {
      main.append(element("section", {}, element("h2", {}, "Thank you"),
        element("button", { "data-button": BUTTONS.backHome, "data-route": "#/" }, "Back home")));
    } else {
      main.append(element("h2", {}, visit.page === PAGES.search ? "Results" : "Today's picks"),
        element("div", { class: "grid" }, ...products.map(card)));
    }
  },
};

/** Whether the endpoint knows a stored device: an empty signed score post is refused as
 * unknown_device (401) by an endpoint whose database does not hold it. */
async function knownToEndpoint(base: string, identity: DeviceIdentity): Promise<boolean> {
  const url = new URL(SCORES_PATH, base);
  const body = new TextEncoder().encode(JSON.stringify({ scores: [] }));
  const headers = await signedHeaders(identity, "POST", signedPath(url), body);
  const response = await fetch(url, { method: "POST", headers: { "content-type": "application/json", ...headers }, body });
  const answer = await response.text();
  return !(response.status === 401 && answer.includes("unknown_device"));
}

async function start(): Promise<void> {
  const config = (await (await fetch("/config.json")).json()) as ShopConfig;
  state.user = config.user;
  render.status("checking the bundle's signature and files ...");
  const ort = (await import(config.ortModule)) as OrtWeb;
  ort.env.wasm.numThreads = 1;
  ort.env.wasm.wasmPaths = config.ortWasm;
  const bundle = await openBundle(fetchSource(config.bundle), { publicKeyPem: config.publicKeyPem });
  const entry = bundle.artifact(config.precision);
  state.runtime = `onnxruntime-web ${ort.env.versions.web ?? ""} (wasm, 1 thread)`;
  const scorer = await OrtScorer.create(ort as unknown as OrtModule, await bundle.artifactBytes(entry), state.runtime, "wasm");
  render.status("running the golden cases ...");
  state.selfTest = await selfTest(bundle, entry.path, entry.precision, scorer);
  Object.assign(state, { modelVersion: bundle.modelVersion, precision: entry.precision, artifact: entry.path, signer: bundle.signer });
  const base = new URL(config.endpoint, window.location.href).href;
  let { identity, registered } = await deviceIdentity(base, config.user.user_id);
  if (!registered && !(await knownToEndpoint(base, identity))) {
    await forgetIdentity(base, config.user.user_id); // a new endpoint database: register again
    ({ identity, registered } = await deviceIdentity(base, config.user.user_id));
  }
  state.deviceId = identity.deviceId;
  const uplink = new Uplink(base, identity);
  state.uplinkError = () => uplink.lastError;
  state.acknowledged = () => uplink.acknowledged;
  const device = new Device({
    bundle, scorer, screen: state.screen,
    eventListener: (event) => state.log.push({ kind: "event", ...event }),
    listener: (score) => {
      if (score.post) {
        state.posted += 1;
        void uplink.submit(score);
      }
      state.log.push({ kind: "score", posted: score.post, ...score });
      render.score(score, score.post);
    },
  });
  device.setUser(config.user.history, config.user.profile);
  const full = bundle.golden.cases.find((c) => c.name === "long") ?? bundle.golden.cases[0]; // full views, as dipn's benchmarks time
  state.benchmark = async (repeat: number) => {
    if (full === undefined) return [];
    const inputs = encodeCase(bundle.spec, bundle.inputNames, full.raw);
    const times: number[] = [];
    for (let i = 0; i < repeat; i += 1) {
      const t0 = performance.now();
      await scorer.scores(inputs);
      times.push(performance.now() - t0);
    }
    return times;
  };
  const { timer_ms: timer, idle_limit_ms: limit } = device.policy;
  const policy = `scores at events${timer === null ? "" : ` and every ${timer / 1000} s idle up to ${limit / 60_000} min`}` +
    (device.policyRecorded ? "" : " (defaults: the bundle records no policy)");
  render.status(`${bundle.modelVersion} ${entry.precision}, signed by ${bundle.signer ?? "?"}; self-test ${state.selfTest.cases} golden cases ` +
    `(max |diff| ${state.selfTest.maxAbsDiff.toExponential(1)}); ${state.runtime}; ${policy}; device ${identity.deviceId.slice(0, 8)}`);
  state.ready = true;
  new Shop(device, catalog(bundle.features), config.user.user_id).start(Date.now());
}

start().catch((error: unknown) => {
  state.error = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
  render.status(`refused: ${state.error}`);
});
