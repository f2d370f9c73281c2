/*
 * psiturk.js, as served by turnout at /static/js/psiturk.js.
 *
 * turnout's own implementation of the public client API of psiTurk 3, so that a psiTurk
 * project's task.js runs unchanged. Like psiTurk's library it expects jQuery (1.10 or
 * later), underscore and Backbone to be loaded before it. It defines one global, PsiTurk,
 * and keeps psiTurk's Backbone.Notifications event bus.
 *
 * What turnout adds, without changing the API:
 *   - The /exp page carries <meta name="turnout-participant-token" content="...">. Every
 *     same-origin request this page makes through XMLHttpRequest (jQuery, Backbone, the
 *     project's own $.ajax calls) or fetch() carries it as the X-Turnout-Token header, and
 *     completeHIT() adds it to the completion URL as turnout_token. It is never sent to
 *     another origin.
 *   - saveData() retries when the network or the server fails for a moment, and never
 *     lets an older save overtake a newer one: saves leave one at a time, and each
 *     carries X-Turnout-Save: <page load>.<sequence> so the server can refuse (409) one
 *     that arrives after a newer one.
 *   - The quit-early notice is sent when the page is really left (pagehide), not when the
 *     "leave this page?" dialog is merely shown, so a participant who stays is not marked
 *     as a quitter.
 *
 * This file is served as is (it is not a template).
 */
(function (global) {
  "use strict";

  var TOKEN_META_NAME = "turnout-participant-token";
  var TOKEN_HEADER = "X-Turnout-Token";
  var TOKEN_PARAM = "turnout_token";
  var SAVE_ORDER_HEADER = "X-Turnout-Save";
  var SERVER_TIME_HEADER = "X-Turnout-Server-Time";   // the server's clock on GET /sync
  var PATCH_MARK = "__turnoutTokenPatch";

  var SAVE_TIMEOUT_MS = 30000;       // a save that hangs this long counts as a network failure
  var SAVE_MAX_ATTEMPTS = 6;
  var SAVE_FIRST_DELAY_MS = 500;     // backoff doubles from here...
  var SAVE_MAX_DELAY_MS = 8000;      // ...up to here
  var RETRY_AFTER_CAP_MS = 30000;    // a server's Retry-After is honoured up to this
  var COMPLETE_WAIT_MS = 10000;      // completeHIT waits at most this long for a pending save
  var KEEPALIVE_MAX_BYTES = 60000;   // browsers cap keepalive request bodies at 64 KiB
  var QUIT_MESSAGE = "By leaving or reloading this page, you opt out of the experiment. " +
    "Are you sure you want to leave the experiment?";

  /* ------------------------------------------------------------------------------------
   * Participant token
   * ---------------------------------------------------------------------------------- */

  var participantToken = null;

  function readToken() {
    if (participantToken === null && global.document && document.querySelector) {
      var meta = document.querySelector('meta[name="' + TOKEN_META_NAME + '"]');
      var value = meta && meta.getAttribute("content");
      if (value) {
        participantToken = value;
      }
    }
    return participantToken;
  }

  function resolveUrl(url) {
    try {
      return new URL(String(url), document.baseURI || global.location.href);
    } catch (e) {
      return null;
    }
  }

  function isSameOrigin(url) {
    var resolved = resolveUrl(url);
    return resolved !== null && resolved.origin === global.location.origin;
  }

  // Adds the token to a same-origin URL that the browser will navigate to.
  function urlWithToken(url) {
    var token = readToken();
    if (!token || !isSameOrigin(url)) {
      return url;
    }
    var hashAt = url.indexOf("#");
    var hash = hashAt === -1 ? "" : url.slice(hashAt);
    var base = hashAt === -1 ? url : url.slice(0, hashAt);
    var joiner = base.indexOf("?") === -1 ? "?" : "&";
    return base + joiner + TOKEN_PARAM + "=" + encodeURIComponent(token) + hash;
  }

  function markPatched(fn) {
    try {
      Object.defineProperty(fn, PATCH_MARK, { value: true });
    } catch (e) {
      fn[PATCH_MARK] = true;
    }
  }

  // Every same-origin XMLHttpRequest gets the token header. This covers jQuery, Backbone
  // and any code of the project's own, whatever library it goes through.
  function patchXMLHttpRequest() {
    var XHR = global.XMLHttpRequest;
    if (!XHR || !XHR.prototype || XHR.prototype.open[PATCH_MARK]) {
      return;
    }
    var proto = XHR.prototype;
    var originalOpen = proto.open;
    var originalSend = proto.send;
    var originalSetRequestHeader = proto.setRequestHeader;
    var requests = typeof WeakMap === "function" ? new WeakMap() : null;

    function remember(xhr, info) {
      if (requests) {
        requests.set(xhr, info);
      } else {
        xhr[PATCH_MARK] = info;
      }
    }

    function recall(xhr) {
      return requests ? requests.get(xhr) : xhr[PATCH_MARK];
    }

    proto.open = function (method, url) {
      remember(this, { sameOrigin: isSameOrigin(url), tokenSet: false });
      // apply with the caller's own arguments: open(m, u) and open(m, u, undefined)
      // differ (the second is synchronous).
      return originalOpen.apply(this, arguments);
    };

    proto.setRequestHeader = function (name) {
      var info = recall(this);
      if (info && String(name).toLowerCase() === TOKEN_HEADER.toLowerCase()) {
        info.tokenSet = true;
      }
      return originalSetRequestHeader.apply(this, arguments);
    };

    proto.send = function () {
      var info = recall(this);
      var token = readToken();
      if (info && info.sameOrigin && !info.tokenSet && token) {
        try {
          originalSetRequestHeader.call(this, TOKEN_HEADER, token);
          info.tokenSet = true;
        } catch (e) {
          // not opened, or already sent: the browser will report that itself
        }
      }
      return originalSend.apply(this, arguments);
    };

    markPatched(proto.open);
  }

  function patchFetch() {
    var originalFetch = global.fetch;
    if (typeof originalFetch !== "function" || originalFetch[PATCH_MARK] ||
        typeof global.Request !== "function") {
      return;
    }
    var wrapped = function (input, init) {
      var token = readToken();
      var url = input instanceof global.Request ? input.url : input;
      if (!token || !isSameOrigin(url)) {
        return originalFetch.apply(global, arguments);
      }
      var request;
      try {
        request = new global.Request(input, init);
      } catch (e) {
        return originalFetch.apply(global, arguments);  // let fetch report the bad input
      }
      if (!request.headers.has(TOKEN_HEADER)) {
        request.headers.set(TOKEN_HEADER, token);
      }
      return originalFetch.call(global, request);
    };
    markPatched(wrapped);
    global.fetch = wrapped;
  }

  readToken();
  patchXMLHttpRequest();
  patchFetch();

  /* ------------------------------------------------------------------------------------
   * Shared plumbing
   * ---------------------------------------------------------------------------------- */

  function requireLibraries() {
    var missing = [];
    if (!global.jQuery) { missing.push("jQuery"); }
    if (!global._) { missing.push("underscore"); }
    if (!global.Backbone) { missing.push("Backbone"); }
    if (missing.length) {
      throw new Error("psiturk.js needs " + missing.join(", ") +
        " loaded before it (add their <script> tags above psiturk.js in exp.html)");
    }
  }

  // psiTurk's page-wide event bus. Projects may listen on it (e.g. for
  // '_psiturk_finishedinstructions'), so it keeps its name.
  function notificationBus() {
    var Backbone = global.Backbone;
    if (!Backbone.Notifications) {
      Backbone.Notifications = global._.extend({}, Backbone.Events);
    }
    return Backbone.Notifications;
  }

  var windowWatched = false;

  // Focus and resize are page-wide facts: report them to the bus once, however many
  // PsiTurk objects the page makes.
  function watchWindow() {
    if (windowWatched) {
      return;
    }
    windowWatched = true;
    var $ = global.jQuery;
    var bus = notificationBus();
    var resizeTimer = null;
    $(global).on("blur.psiturk", function () {
      bus.trigger("_psiturk_lostfocus");
    });
    $(global).on("focus.psiturk", function () {
      bus.trigger("_psiturk_gainedfocus");
    });
    $(global).on("resize.psiturk", function () {
      if (resizeTimer !== null) {
        clearTimeout(resizeTimer);
      }
      resizeTimer = setTimeout(function () {
        resizeTimer = null;
        bus.trigger("_psiturk_windowresize", [global.innerWidth, global.innerHeight]);
      }, 200);
    });
  }

  // Runs a caller's callback without letting its exception break our own bookkeeping;
  // the exception still reaches the console as an uncaught error.
  function callSafely(fn, self, args) {
    if (typeof fn !== "function") {
      return;
    }
    try {
      fn.apply(self, args);
    } catch (e) {
      setTimeout(function () { throw e; }, 0);
    }
  }

  // Orders this page's saves for the server: "<page load>.<sequence>", where the page
  // load is the load time in ms (13 digits) plus 8 random hex digits, and the sequence
  // grows with every PUT this page sends (a retry too: it carries the newest data).
  // Made on the first save, not at construction: a page without the /exp page's meta tag
  // takes the server's clock from the constructor's record load (see serverLoadTime).
  var pageLoadId = null;
  var serverLoadTime = null;   // X-Turnout-Server-Time of this page's GET /sync, if any
  function currentPageLoadId() {
    if (pageLoadId !== null) {
      return pageLoadId;
    }
    var hex = "";
    var bytes = new Uint8Array(4);
    if (global.crypto && global.crypto.getRandomValues) {
      global.crypto.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i += 1) {
        bytes[i] = Math.floor(Math.random() * 256);
      }
    }
    for (var j = 0; j < bytes.length; j += 1) {
      hex += (bytes[j] < 16 ? "0" : "") + bytes[j].toString(16);
    }
    // The server's time of this page load: the /exp page's meta tag, else the server's
    // clock when this page loaded the record (a page of the project's own route), else the
    // browser's clock. The server refuses stamps from the future, and orders a
    // participant's pages by these times, so they must all come from the server's clock
    // whenever they can: a browser whose clock is slow would otherwise stamp a later page
    // before the /exp page, and its saves would be refused.
    var meta = global.document && global.document.querySelector &&
      global.document.querySelector('meta[name="turnout-page-load"]');
    var fromMeta = meta && meta.getAttribute("content");
    var loaded = /^[0-9]{1,13}$/.test(fromMeta || "") ? fromMeta :
      /^[0-9]{1,13}$/.test(serverLoadTime || "") ? serverLoadTime : String(new Date().getTime());
    pageLoadId = ("0000000000000" + loaded).slice(-13) + "-" + hex;
    return pageLoadId;
  }
  var saveSequence = 0;

  // The headers of one PUT /sync: the caller's, plus the next save-order stamp.
  function saveHeaders(headers) {
    saveSequence += 1;
    headers[SAVE_ORDER_HEADER] = currentPageLoadId() + "." + saveSequence;
    return headers;
  }

  function canKeepalive() {
    return typeof global.fetch === "function" && typeof global.Request === "function" &&
      "keepalive" in global.Request.prototype;
  }

  function byteLength(text) {
    if (typeof global.TextEncoder === "function") {
      return new global.TextEncoder().encode(text).length;
    }
    return text.length * 3;
  }

  // Keep the uniqueId readable (W:A, as psiTurk sent it) while escaping what would
  // break the query string.
  function encodeId(id) {
    return encodeURIComponent(String(id)).replace(/%3A/gi, ":");
  }

  /* ------------------------------------------------------------------------------------
   * The instruction player behind doInstructions()
   * ---------------------------------------------------------------------------------- */

  function Instructions(psiturk, pages, callback) {
    var $ = global.jQuery;
    var current = 0;
    var shownAt = 0;

    function record(viewed, action) {
      psiturk.recordTrialData({
        phase: "INSTRUCTIONS",
        template: pages[viewed],
        indexOf: viewed,
        action: action,
        viewTime: new Date().getTime() - shownAt
      });
    }

    function show() {
      psiturk.showPage(pages[current]);
      var nav = $(".instructionsnav");
      if (current !== 0) {
        nav.on("click.psiturk.instructionsnav.prev", ".previous", previous);
      }
      nav.on("click.psiturk.instructionsnav.next", ".continue", next);
      shownAt = new Date().getTime();
    }

    function previous() {
      if (current === 0) {
        return;
      }
      record(current, "PrevPage");
      current -= 1;
      show();
    }

    function next() {
      var viewed = current;
      if (viewed + 1 >= pages.length) {
        record(viewed, "FinishInstructions");
        finish();
        return;
      }
      record(viewed, "NextPage");
      current += 1;
      show();
    }

    function finish() {
      $(".instructionsnav").off(".psiturk");
      psiturk.finishInstructions();
      if (typeof callback === "function") {
        callback();
      }
    }

    this.getIndicator = function () {
      return {
        currently_viewing: { indexOf: current, template: pages[current] },
        instruction_deck: { total_pages: pages.length, templates: pages }
      };
    };

    this.loadFirstPage = function () {
      current = 0;
      show();
    };

    psiturk.recordTrialData({ phase: "INSTRUCTIONS", templates: pages, action: "Begin" });
  }

  /* ------------------------------------------------------------------------------------
   * PsiTurk
   * ---------------------------------------------------------------------------------- */

  function PsiTurk(uniqueId, adServerLoc, mode) {
    // Some projects call PsiTurk(...) without `new`; psiTurk's version tolerated that.
    if (this === undefined || this === null || this === global) {
      return new PsiTurk(uniqueId, adServerLoc, mode);
    }
    requireLibraries();

    var self = this;
    var $ = global.jQuery;
    var _ = global._;
    var Backbone = global.Backbone;
    var bus = notificationBus();
    var instructionController;

    mode = mode || "live";

    /* ---- the participant's record, mirrored at /sync/<uniqueId> ---- */

    var TaskData = Backbone.Model.extend({
      urlRoot: "/sync",
      adServerLoc: adServerLoc,
      mode: mode,

      defaults: function () {
        return {
          condition: 0,
          counterbalance: 0,
          assignmentId: 0,
          workerId: 0,
          hitId: 0,
          currenttrial: 0,
          bonus: 0,
          data: [],
          questiondata: {},
          eventdata: [],
          useragent: "",
          mode: ""
        };
      },

      initialize: function () {
        this.set({ useragent: global.navigator ? global.navigator.userAgent : "" });
        this.set({ mode: this.mode });
        this.addEvent("initialized", null);
        this.addEvent("window_resize", [global.innerWidth, global.innerHeight]);
        this.listenTo(bus, "_psiturk_lostfocus", function () { this.addEvent("focus", "off"); });
        this.listenTo(bus, "_psiturk_gainedfocus", function () { this.addEvent("focus", "on"); });
        this.listenTo(bus, "_psiturk_windowresize", function (size) {
          this.addEvent("window_resize", size);
        });
      },

      addTrialData: function (trialdata) {
        var data = this.get("data");
        data.push({
          uniqueid: this.id,
          current_trial: this.get("currenttrial"),
          dateTime: new Date().getTime(),
          trialdata: trialdata
        });
        this.set("data", data);
        this.set({ currenttrial: this.get("currenttrial") + 1 });
      },

      addUnstructuredData: function (field, response) {
        var questions = this.get("questiondata");
        questions[field] = response;
        this.set("questiondata", questions);
      },

      getTrialData: function () { return this.get("data"); },
      getEventData: function () { return this.get("eventdata"); },
      getQuestionData: function () { return this.get("questiondata"); },

      addEvent: function (eventtype, value) {
        var events = this.get("eventdata");
        var timestamp = new Date().getTime();
        var last = events.length ? events[events.length - 1] : null;
        var interval = (eventtype === "initialized" || !last) ? 0 : timestamp - last.timestamp;
        events.push({ eventtype: eventtype, value: value, timestamp: timestamp, interval: interval });
        this.set("eventdata", events);
      }
    });

    var taskdata = new TaskData({ id: uniqueId });

    /* ---- saving: one request at a time, newest data wins, retried on transient failure ---- */

    var inFlight = null;     // callbacks answered by the save being sent (or backing off)
    var queued = [];         // callbacks that asked to save while inFlight was busy
    var idleWaiters = [];

    function saveIsIdle() {
      return inFlight === null && queued.length === 0;
    }

    function whenSavesSettle(limitMs, then) {
      if (saveIsIdle()) {
        then();
        return;
      }
      var done = false;
      var once = function () {
        if (!done) {
          done = true;
          then();
        }
      };
      idleWaiters.push(once);
      setTimeout(once, limitMs);
    }

    function isRetryable(xhr, textStatus) {
      var status = xhr ? xhr.status : 0;
      if (status === 0) {
        return textStatus !== "abort";   // network failure or timeout; an abort is deliberate
      }
      return status === 429 || status >= 500;
    }

    function retryDelay(attempt, xhr) {
      var ceiling = Math.min(SAVE_MAX_DELAY_MS, SAVE_FIRST_DELAY_MS * Math.pow(2, attempt - 1));
      var delay = ceiling / 2 + Math.random() * ceiling / 2;
      var retryAfter = xhr && xhr.getResponseHeader ? xhr.getResponseHeader("Retry-After") : null;
      var seconds = retryAfter === null ? NaN : parseFloat(retryAfter);
      if (!isNaN(seconds) && seconds >= 0) {
        delay = Math.max(delay, Math.min(seconds * 1000, RETRY_AFTER_CAP_MS));
      }
      return delay;
    }

    function settle(ok, result) {
      var answered = inFlight;
      inFlight = null;
      _.each(answered, function (callbacks) {
        if (ok) {
          callSafely(callbacks.success, callbacks.context, [taskdata, result, callbacks]);
        } else {
          callSafely(callbacks.error, callbacks.context, [taskdata, result, callbacks]);
        }
      });
      if (ok) {
        taskdata.trigger("sync", taskdata, result, {});
      } else {
        taskdata.trigger("error", taskdata, result, {});
      }
      // A callback may already have started the next save.
      if (inFlight === null && queued.length) {
        startSave();
      }
      if (saveIsIdle()) {
        var waiters = idleWaiters;
        idleWaiters = [];
        _.each(waiters, function (fn) { callSafely(fn, null, []); });
      }
    }

    function sendSave(attempt) {
      // Whoever asked to save during a backoff rides along: the body is built now, so it
      // already holds their data.
      if (queued.length) {
        inFlight = inFlight.concat(queued);
        queued = [];
      }
      $.ajax({
        url: _.result(taskdata, "url"),
        type: "PUT",
        contentType: "application/json",
        data: JSON.stringify(taskdata.toJSON()),
        headers: saveHeaders({}),
        timeout: SAVE_TIMEOUT_MS,
        success: function (response) {
          settle(true, response);
        },
        error: function (xhr, textStatus) {
          if (xhr && xhr.status >= 200 && xhr.status < 300) {
            settle(true, xhr.responseText);    // saved; only the reply was not JSON
          } else if (attempt < SAVE_MAX_ATTEMPTS && isRetryable(xhr, textStatus)) {
            setTimeout(function () { sendSave(attempt + 1); }, retryDelay(attempt, xhr));
          } else {
            settle(false, xhr);   // e.g. 409 (stale save refused), 403 (bad token)
          }
        }
      });
    }

    function startSave() {
      inFlight = queued;
      queued = [];
      sendSave(1);
    }

    // For a page that is going away: a keepalive request outlives the page.
    function saveOnExit() {
      var body = JSON.stringify(taskdata.toJSON());
      if (canKeepalive() && byteLength(body) <= KEEPALIVE_MAX_BYTES) {
        global.fetch(_.result(taskdata, "url"), {
          method: "PUT",
          headers: saveHeaders({ "Content-Type": "application/json" }),
          body: body,
          keepalive: true,
          credentials: "same-origin"
        }).catch(function () {});
      } else {
        self.saveData();
      }
    }

    function reportQuitter() {
      if (canKeepalive()) {
        global.fetch(resolveUrl("quitter").href, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded; charset=UTF-8" },
          body: "uniqueId=" + encodeURIComponent(taskdata.id),
          keepalive: true,
          credentials: "same-origin"
        }).catch(function () {});
      } else {
        $.ajax("quitter", { type: "POST", data: { uniqueId: taskdata.id } });
      }
    }

    function onBeforeUnload() {
      self.saveData();
      return QUIT_MESSAGE;
    }

    function onPageHide() {
      saveOnExit();
      reportQuitter();
    }

    /* ---- public API ---- */

    self.pages = {};
    self.taskdata = taskdata;

    self.preloadImages = function (imagenames) {
      return Promise.all(_.map([].concat(imagenames || []), function (src) {
        return new Promise(function (resolve) {
          var image = new Image();
          image.onload = image.onerror = function () { resolve(image); };
          image.src = src;
        });
      }));
    };

    // Fetches the raw template files (served from templates/ by path) into self.pages.
    self.preloadPages = function (pagenames) {
      return Promise.all(_.map([].concat(pagenames || []), function (pagename) {
        return new Promise(function (resolve, reject) {
          $.ajax({
            url: pagename,
            dataType: "html",
            success: function (html) {
              self.pages[pagename] = html;
              resolve(html);
            },
            error: function (xhr, textStatus) {
              reject(new Error("psiturk.js could not load page " + pagename + " (" +
                (xhr && xhr.status ? "HTTP " + xhr.status : textStatus) + ")"));
            }
          });
        });
      }));
    };

    self.getPage = function (pagename) {
      if (!Object.prototype.hasOwnProperty.call(self.pages, pagename)) {
        // Projects written for psiTurk 2 show pages without waiting for the preload;
        // fetch the page now rather than fail.
        var html = null;
        $.ajax({
          url: pagename,
          dataType: "html",
          async: false,
          success: function (page) { html = page; }
        });
        if (html === null) {
          throw new Error("Attempting to load page before preloading: " + pagename);
        }
        self.pages[pagename] = html;
      }
      return self.pages[pagename];
    };

    self.showPage = function (pagename) {
      $("body").html(self.getPage(pagename));
    };

    self.recordTrialData = function (trialdata) {
      taskdata.addTrialData(trialdata);
    };

    self.recordUnstructuredData = function (field, value) {
      taskdata.addUnstructuredData(field, value);
    };

    self.getTrialData = function () { return taskdata.getTrialData(); };
    self.getEventData = function () { return taskdata.getEventData(); };
    self.getQuestionData = function () { return taskdata.getQuestionData(); };

    // GET url?uniqueId=...; the project's route (custom.py) sets the bonus. onError is a
    // turnout addition; psiTurk ignored failures.
    self.computeBonus = function (url, callback, onError) {
      $.ajax(url, {
        type: "GET",
        data: { uniqueId: taskdata.id },
        success: callback,
        error: onError
      });
    };

    // PUT /sync/<uniqueId> with every attribute. callbacks: {success, error}, called as
    // Backbone's save() would: (model, response-or-xhr, options).
    self.saveData = function (callbacks) {
      queued.push(callbacks || {});
      if (inFlight === null) {
        startSave();
      }
    };

    self.startTask = function () {
      self.saveData();
      $.ajax("inexp", { type: "POST", data: { uniqueId: taskdata.id } });
      if (taskdata.mode !== "debug") {   // reloading freely is part of debugging
        $(global).on("beforeunload", onBeforeUnload);
        global.addEventListener("pagehide", onPageHide);
      }
    };

    self.finishInstructions = function (optmessage) {
      bus.trigger("_psiturk_finishedinstructions", optmessage);
    };

    self.teardownTask = function (optmessage) {
      bus.trigger("_psiturk_finishedtask", optmessage);
    };

    self.completeHIT = function () {
      self.teardownTask();
      var url = urlWithToken(taskdata.adServerLoc + "?uniqueId=" + encodeId(taskdata.id) +
        "&mode=" + encodeURIComponent(taskdata.mode));
      whenSavesSettle(COMPLETE_WAIT_MS, function () {
        global.location.href = url;
      });
    };

    self.doInstructions = function (pages, callback) {
      instructionController = new Instructions(self, pages, callback);
      instructionController.loadFirstPage();
    };

    self.getInstructionIndicator = function () {
      return instructionController ? instructionController.getIndicator() : undefined;
    };

    /* ---- wiring ---- */

    bus.on("_psiturk_finishedinstructions", self.startTask);
    bus.on("_psiturk_finishedtask", function () {
      // psiTurk removed every beforeunload handler here, the project's included, so that
      // completing the HIT never stops at a "leave this page?" dialog.
      $(global).off("beforeunload");
      global.removeEventListener("pagehide", onPageHide);
    });
    watchWindow();

    // psiTurk loads the record synchronously, so the project can read it right after
    // constructing PsiTurk. What the server returns (a fresh record, or everything saved
    // before a reload) is merged into the model.
    taskdata.fetch({
      async: false,
      complete: function (xhr) {
        serverLoadTime = xhr && xhr.getResponseHeader ? xhr.getResponseHeader(SERVER_TIME_HEADER) : null;
      },
      error: function (model, xhr) {
        if (global.console && global.console.warn) {
          global.console.warn("psiturk.js: could not load /sync for " + uniqueId +
            " (HTTP " + (xhr && xhr.status) + ")");
        }
      }
    });

    return self;
  }

  PsiTurk.implementation = "turnout";

  global.PsiTurk = PsiTurk;

  if (global.Backbone && global._) {
    notificationBus();   // exists as soon as psiturk.js has loaded, as in psiTurk
  }
}(typeof window !== "undefined" ? window : this));
