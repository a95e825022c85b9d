// Redoc's bundle draws the Redocly logo from a CDN, which the Content Security Policy blocks (img-src 'self' data:):
// loaded before the bundle, this gives that one image an empty local picture instead, whichever way React sets it
// (the attribute when it creates the element, the property when it commits). The link to Redocly stays.
// templates/drf_spectacular/redoc.html does the same in its set-up script when REDOC_UI_SETTINGS is used.
(function () {
  "use strict";
  var remoteLogo = "https://cdn.redoc.ly/redoc/logo-mini.svg";
  var noLogo = "data:image/svg+xml,%3Csvg xmlns='http://www.w3.org/2000/svg' width='0' height='0'/%3E";
  var local = function (value) { return value === remoteLogo ? noLogo : value; };
  var setAttribute = Element.prototype.setAttribute;
  Element.prototype.setAttribute = function (name, value) {
    return setAttribute.call(this, name, name === "src" ? local(value) : value);
  };
  var source = Object.getOwnPropertyDescriptor(HTMLImageElement.prototype, "src");
  Object.defineProperty(HTMLImageElement.prototype, "src", {
    configurable: true,
    enumerable: source.enumerable,
    get: source.get,
    set: function (value) { source.set.call(this, local(value)); },
  });
})();
