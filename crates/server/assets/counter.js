// The cashier's counter: listen to the store's payments (server-sent events) and announce each
// one on screen and, where the browser can speak, out loud. The page works without this file.
(function () {
  'use strict';
  function start() {
    var box = document.querySelector('[data-events]');
    if (!box || typeof EventSource === 'undefined') return;
    var lang = box.getAttribute('data-lang') || 'zh-CN';
    var source = new EventSource(box.getAttribute('data-events'));

    // The day's list, fetched again after a payment; left alone while a refund is being typed.
    function refreshList() {
      var list = document.getElementById('counter-list');
      if (!list || !window.fetch || !window.DOMParser) return;
      fetch(list.getAttribute('data-src') || location.href, { credentials: 'same-origin' }).then(function (r) {
        return r.ok ? r.text() : null;
      }).then(function (html) {
        if (!html || list.contains(document.activeElement)) return;
        var fresh = new DOMParser().parseFromString(html, 'text/html').getElementById('counter-list');
        if (fresh) list.innerHTML = fresh.innerHTML;
      }).catch(function () { /* the next payment or a reload shows it */ });
    }

    function say(text) {
      if (!('speechSynthesis' in window) || typeof SpeechSynthesisUtterance === 'undefined') return;
      try {
        var u = new SpeechSynthesisUtterance(text);
        u.lang = lang;
        window.speechSynthesis.speak(u);
      } catch (e) { /* no voice: the screen still shows it */ }
    }

    source.addEventListener('payment', function (ev) {
      var a;
      try { a = JSON.parse(ev.data); } catch (e) { return; }
      box.textContent = a.text;
      box.setAttribute('data-payment-id', a.payment_id || '');
      box.classList.remove('flash');
      void box.offsetWidth; // restart the highlight
      box.classList.add('flash');
      say(a.speech || a.text);
      refreshList();
    });
    source.addEventListener('open', function () {
      box.setAttribute('data-live', 'yes');
    });
    source.addEventListener('error', function () {
      // EventSource reconnects by itself; say so while it does.
      box.setAttribute('data-live', 'no');
      if (source.readyState === EventSource.CLOSED) box.textContent = box.getAttribute('data-offline');
    });
    window.addEventListener('pagehide', function () { source.close(); });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
