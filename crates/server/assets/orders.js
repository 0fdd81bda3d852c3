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

// The delivery form: as items are chosen and the address typed, the quote part (fee, minimum,
// arrival time, or why not) is fetched again from the server and swapped in. "Use my location"
// fills the coordinates from the phone's position.
(function () {
  'use strict';
  function start() {
    var form = document.querySelector('form[data-quote-src]');
    if (!form || !window.fetch || !window.URLSearchParams || !window.FormData) return;
    var box = document.getElementById('delivery-quote');
    var pending = null;
    var asked = 0;

    function query() {
      var params = new URLSearchParams();
      new FormData(form).forEach(function (value, name) {
        if (name === 'csrf' || name === 'key' || name === 'coupon' || name === 'note') return;
        if (typeof value === 'string' && value !== '' && value !== '0') params.append(name, value);
      });
      return params.toString();
    }

    function refresh() {
      var n = ++asked;
      fetch(form.getAttribute('data-quote-src') + '?' + query(), { credentials: 'same-origin', headers: { accept: 'text/html' } })
        .then(function (r) { return r.ok ? r.text() : null; })
        .then(function (html) {
          if (html === null || n !== asked || !box) return;
          box.innerHTML = html;
          box.setAttribute('data-quoted', String(n));
        })
        .catch(function () { /* submitting still checks everything */ });
    }

    function schedule() {
      if (pending) clearTimeout(pending);
      pending = setTimeout(function () { pending = null; refresh(); }, 300);
    }

    form.addEventListener('input', schedule);
    form.addEventListener('change', schedule);

    var locate = form.querySelector('[data-locate-me]');
    var status = form.querySelector('[data-locate-status]');
    if (locate && navigator.geolocation) {
      locate.hidden = false;
      locate.addEventListener('click', function () {
        if (status) status.textContent = locate.getAttribute('data-locating');
        navigator.geolocation.getCurrentPosition(function (pos) {
          form.elements.lat.value = pos.coords.latitude.toFixed(6);
          form.elements.lng.value = pos.coords.longitude.toFixed(6);
          if (status) status.textContent = locate.getAttribute('data-located');
          refresh();
        }, function () {
          if (status) status.textContent = locate.getAttribute('data-failed');
        }, { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 });
      });
    }
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();

// Scan-and-go's camera: the photo goes to the JSON API (POST /v1/orders/{id}/items/photo, the
// basket opened first if there is none), which reads the barcode on the server; the page is
// then shown again with the basket, or with what went wrong (said by the server, by its code).
(function () {
  'use strict';
  function start() {
    var box = document.querySelector('[data-scan-camera]');
    if (!box || !window.fetch) return;
    var input = box.querySelector('[data-scan-photo]');
    var status = box.querySelector('[data-scan-status]');
    var store = box.getAttribute('data-store');
    var csrf = box.getAttribute('data-csrf');
    box.hidden = false;

    function answer(r) {
      if (r.ok) return r.json();
      return r.json().then(function (b) {
        throw (b && b.error && b.error.code) || 'photo_failed';
      }, function () { throw 'photo_failed'; });
    }

    function show(order, code) {
      var to = '/stores/' + encodeURIComponent(store) + '/scan-and-go';
      var q = [];
      if (order) q.push('order=' + encodeURIComponent(order));
      if (code) q.push('photo_error=' + encodeURIComponent(code));
      location.assign(q.length ? to + '?' + q.join('&') : to);
    }

    // A phone's full-size photo can pass the 5 MB limit: larger ones are scaled down to 2000 px
    // (plenty for a barcode) before they are sent.
    function shrink(file) {
      if (file.size <= 4 * 1024 * 1024 || !window.createImageBitmap) return Promise.resolve(file);
      return createImageBitmap(file).then(function (img) {
        var scale = Math.min(1, 2000 / Math.max(img.width, img.height));
        var canvas = document.createElement('canvas');
        canvas.width = Math.round(img.width * scale);
        canvas.height = Math.round(img.height * scale);
        canvas.getContext('2d').drawImage(img, 0, 0, canvas.width, canvas.height);
        return new Promise(function (done) {
          canvas.toBlob(function (blob) { done(blob || file); }, 'image/jpeg', 0.9);
        });
      }, function () { return file; });
    }

    input.addEventListener('change', function () {
      var picked = input.files && input.files[0];
      if (!picked) return;
      if (status) status.textContent = box.getAttribute('data-reading');
      var order = box.getAttribute('data-order');
      var opened = order ? Promise.resolve(order) : fetch('/v1/orders', {
        method: 'POST',
        credentials: 'same-origin',
        headers: { 'content-type': 'application/json', 'x-csrf-token': csrf },
        body: JSON.stringify({ channel: 'scan_and_go', store_id: store })
      }).then(answer).then(function (o) { box.setAttribute('data-order', o.id); return o.id; });
      opened.then(function (id) {
        return shrink(picked).then(function (file) { return fetch('/v1/orders/' + encodeURIComponent(id) + '/items/photo', {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'content-type': file.type || 'image/jpeg', 'x-csrf-token': csrf },
          body: file
        }); }).then(answer).then(function () { show(id, null); }, function (code) { show(id, String(code)); });
      }, function (code) { show(order, String(code)); });
    });
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', start);
  else start();
})();
