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
})();
