export function NotBuilt(props: { title: string; api: string }) {
  return (
    <section class="page">
      <h1>{props.title}</h1>
      <div class="empty">
        <p><strong>This page is not built yet.</strong></p>
        {props.api
          ? <p>The API already serves it: <code>{props.api}</code> (see <a href="/api/docs">/api/docs</a>).</p>
          : <p>Nothing lives at this address. Pick a page from the bar above.</p>}
      </div>
    </section>
  );
}
