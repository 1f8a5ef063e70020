// ReDoc's styled-components inject <style> tags: handing them this script's nonce lets the
// page keep its nonce-only style-src.
(function () {
  const script = document.currentScript;
  Redoc.init(script.dataset.schemaUrl, { nonce: script.nonce, disableSearch: true }, document.getElementById("redoc"));
})();
