// Live orders: the element with data-live-src is fetched again (and swapped in) whenever its
// server-sent event stream (data-events) reports a change of an order. Every text is rendered
// by the server in the page's language; the pages work without this file (reload to update).
(function () {
  'use strict';
  function start() {
    var box = document.querySelector('[data-live-src][data-events]');
    if (!box || typeof EventSource === 'undefined' || !window.fetch || !window.DOMParser) return;
    var source = null;
    var url = null;
    var pending = null;

    function connect(events) {
      if (events === url && source) return;
      if (source) source.close();
      url = events;
      source = new EventSource(events);
      source.addEventListener('open', function () {
        box.setAttribute('data-live', 'yes');
        // Whatever changed before the stream opened shows too.
        schedule(0);
      });
      source.addEventListener('order', function () { schedule(0); });
      source.addEventListener('error', function () { box.setAttribute('data-live', 'no'); });
    }

    function busy() {
      var a = document.activeElement;
      return a && box.contains(a) && (a.tagName === 'INPUT' || a.tagName === 'SELECT') && a.value !== '';
    }

    function schedule(delay) {
      if (pending) return;
      pending = setTimeout(function () { pending = null; refresh(); }, delay);
    }

    function refresh() {
      // Leave an amount being typed alone; look again shortly.
      if (busy()) { schedule(1000); return; }
      fetch(box.getAttribute('data-live-src'), { credentials: 'same-origin', headers: { accept: 'text/html' } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (!html) return;
          var doc = new DOMParser().parseFromString(html, 'text/html');
          var fresh = doc.getElementById(box.id);
          if (!fresh) return;
          box.innerHTML = fresh.innerHTML;
          ['data-live-src', 'data-events', 'data-order-id', 'data-status'].forEach(function (name) {
            var v = fresh.getAttribute(name);
            if (v === null) box.removeAttribute(name); else box.setAttribute(name, v);
          });
          box.setAttribute('data-refreshed', String(Date.now()));
          // A table whose first order just opened: follow that order's own stream.
          connect(box.getAttribute('data-events'));
        })
        .catch(function () { /* the next event or a reload shows it */ });
    }

    connect(box.getAttribute('data-events'));
    window.addEventListener('pagehide', function () { if (source) source.close(); });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
