// o2o pages: small progressive enhancements only; every page works without this file.
(function () {
  'use strict';
  // The home page asks for the phone's location once, then reloads with ?near=lat,lng.
  function locate() {
    var el = document.querySelector('[data-locate]');
    if (!el || !navigator.geolocation) return;
    var params = new URLSearchParams(location.search);
    if (params.has('near') || sessionStorage.getItem('o2o-located') === 'no') return;
    navigator.geolocation.getCurrentPosition(function (pos) {
      params.set('near', pos.coords.latitude.toFixed(6) + ',' + pos.coords.longitude.toFixed(6));
      location.search = params.toString();
    }, function () {
      sessionStorage.setItem('o2o-located', 'no');
    }, { timeout: 5000, maximumAge: 60000 });
  }
  document.addEventListener('DOMContentLoaded', locate);

  // The pay-code page holds a few codes, each valid in its own window: show the current one and
  // reload for fresh codes shortly before the last one expires.
  function rotatePayCodes() {
    var codes = Array.prototype.slice.call(document.querySelectorAll('[data-pay-code]'));
    if (!codes.length) return;
    function tick() {
      var now = Date.now();
      var current = null;
      codes.forEach(function (el) {
        var from = Date.parse(el.getAttribute('data-valid-from'));
        var until = Date.parse(el.getAttribute('data-expires-at'));
        if (!current && now >= from - 1000 && now < until - 5000) current = el;
      });
      if (!current) { location.reload(); return; }
      codes.forEach(function (el) { el.hidden = el !== current; });
    }
    tick();
    setInterval(tick, 1000);
  }
  document.addEventListener('DOMContentLoaded', rotatePayCodes);
  // The catalog console uploads a product photo as the raw file (the server decodes and resizes
  // it), then reloads to show it; a refusal is shown next to the form.
  function photoUploads() {
    document.querySelectorAll('[data-photo-upload]').forEach(function (form) {
      form.addEventListener('submit', function (ev) {
        ev.preventDefault();
        var input = form.querySelector('input[type=file]');
        var err = form.querySelector('[data-photo-error]');
        if (!input || !input.files || !input.files[0]) return;
        var file = input.files[0];
        fetch(form.getAttribute('data-photo-upload'), {
          method: 'POST',
          credentials: 'same-origin',
          headers: { 'x-csrf-token': form.getAttribute('data-csrf'), 'content-type': file.type || 'application/octet-stream' },
          body: file
        }).then(function (r) {
          if (r.ok) { location.reload(); return; }
          return r.text().then(function (t) { if (err) { err.textContent = t; err.hidden = false; } });
        });
      });
    });
  }
  document.addEventListener('DOMContentLoaded', photoUploads);
  // A list still changing on the server (a message being delivered) reloads itself to show
  // progress: the element names the delay in data-reload-ms.
  function reloadWhileBusy() {
    var el = document.querySelector('[data-reload-ms]');
    if (!el) return;
    var ms = parseInt(el.getAttribute('data-reload-ms'), 10);
    if (ms > 0) setTimeout(function () { location.reload(); }, ms);
  }
  document.addEventListener('DOMContentLoaded', reloadWhileBusy);
  // The checkout's coupon picker: choosing a coupon (or none) shows its discount and what is
  // left to pay at once (each choice also says it, so the form works without this). Listened
  // for on the document: a live order replaces its part of the page, picker included.
  document.addEventListener('change', function (ev) {
    var r = ev.target;
    if (!r || r.name !== 'coupon' || !r.closest) return;
    var box = r.closest('[data-coupon-picker]');
    if (!box) return;
    var pay = box.querySelector('[data-coupon-to-pay]');
    var off = box.querySelector('[data-coupon-discount]');
    if (pay) pay.textContent = r.getAttribute('data-to-pay') || '';
    if (off) off.textContent = r.getAttribute('data-discount') || '';
  });
})();
