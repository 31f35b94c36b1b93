// Starts Swagger UI on the page's OpenAPI document (a file, not inline: see headers.py).
window.addEventListener("load", function () {
  var box = document.getElementById("swagger-ui");
  window.ui = SwaggerUIBundle({
    url: box.dataset.specUrl,
    domNode: box,
    deepLinking: true,
    validatorUrl: null // no badge fetched from the public validator
  });
});
