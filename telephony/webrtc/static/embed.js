// "Call us" for a company's own site (docs/webrtc.md):
//   <script src="https://iva.example.com/call/static/embed.js" data-label="Call us" async></script>
// adds a button that opens the call page in a small window of the service's own origin (so the
// microphone permission is asked for, and remembered by, that origin).
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script) return;
  const origin = new URL(script.src, location.href).origin;
  const label = script.dataset.label || "Call us";

  function add() {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = label;
    button.setAttribute("aria-label", `${label} (opens a call window)`);
    button.style.cssText = "position:fixed;right:1.2rem;bottom:1.2rem;z-index:2147483000;" +
      "font:600 16px/1 system-ui,sans-serif;padding:.9rem 1.4rem;border:0;border-radius:2rem;" +
      "background:#1e8a4c;color:#fff;box-shadow:0 4px 14px rgba(0,0,0,.25);cursor:pointer";
    button.addEventListener("click", () => {
      const features = "popup,width=440,height=680";
      const opened = window.open(`${origin}/call?embed=1`, "iva-call", features);
      if (opened) opened.focus();
      else location.href = `${origin}/call`;  // popups blocked: go to the page itself
    });
    document.body.appendChild(button);
  }

  if (document.body) add();
  else document.addEventListener("DOMContentLoaded", add);
})();
