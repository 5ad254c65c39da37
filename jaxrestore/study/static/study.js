// The trial page: response time from both pictures being loaded to the choice,
// keyboard choices, a synchronised zoom and the reference toggle. Without
// JavaScript the two buttons still submit the choice (with no response time).
(() => {
  "use strict";
  const form = document.getElementById("choice-form");
  if (!form) return;
  // The zoom's magnification, as a CSS variable: set here, as the Content-Security-Policy
  // allows no style attribute in the page.
  const trial = document.getElementById("trial");
  trial.style.setProperty("--zoom", trial.dataset.zoom);
  const responseField = document.getElementById("response-ms");
  const pictures = Array.from(form.querySelectorAll("img"));
  let shownAt = null;
  let sent = false;
  let loading = pictures.length;

  const loaded = () => {
    loading -= 1;
    if (loading === 0) {
      shownAt = performance.now();
      form.classList.add("ready");
    }
  };
  for (const picture of pictures) {
    if (picture.complete) loaded();
    else {
      picture.addEventListener("load", loaded, { once: true });
      picture.addEventListener("error", loaded, { once: true });
    }
  }

  form.addEventListener("submit", (event) => {
    // A choice counts only once both pictures are on screen, and only once per page.
    if (sent || shownAt === null) {
      event.preventDefault();
      return;
    }
    sent = true;
    responseField.value = (performance.now() - shownAt).toFixed(1);
  });

  const zoom = document.getElementById("zoom");
  const showReference = document.getElementById("show-reference");
  const reference = document.getElementById("reference");
  const setZoom = (on) => {
    zoom.checked = on;
    document.body.classList.toggle("zoomed", on);
  };
  const setReference = (on) => {
    if (!reference) return;
    showReference.checked = on;
    reference.hidden = !on;
  };
  zoom.addEventListener("change", () => setZoom(zoom.checked));
  if (showReference) showReference.addEventListener("change", () => setReference(showReference.checked));

  // The same point of every picture under the pointer: all zoom about it together.
  const allPictures = Array.from(document.querySelectorAll(".frame img"));
  for (const frame of document.querySelectorAll(".frame")) {
    frame.addEventListener("mousemove", (event) => {
      const box = frame.getBoundingClientRect();
      const x = ((event.clientX - box.left) / box.width) * 100;
      const y = ((event.clientY - box.top) / box.height) * 100;
      for (const picture of allPictures) picture.style.transformOrigin = `${x}% ${y}%`;
    });
  }

  document.addEventListener("keydown", (event) => {
    if (event.altKey || event.ctrlKey || event.metaKey) return;
    if (event.key === "ArrowLeft") document.getElementById("left").click();
    else if (event.key === "ArrowRight") document.getElementById("right").click();
    else if (event.key === "z" || event.key === "Z") setZoom(!zoom.checked);
    else if ((event.key === "r" || event.key === "R") && reference) setReference(reference.hidden);
    else return;
    event.preventDefault();
  });
})();
