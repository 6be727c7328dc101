// What the user is typing survives a session that ends. It is kept in this tab's
// sessionStorage as they type, with who they are and where they were, and put back when
// the same user has signed in again; anyone else signing in on the tab never sees it.

const DRAFT = "parley.draft";
const PLACE = "parley.place";

function read(key) {
  try {
    return JSON.parse(sessionStorage.getItem(key) ?? "null");
  } catch {
    return null;
  }
}

export class Drafts {
  constructor() {
    this.user = "";
  }

  setUser(username) {
    this.user = username ?? "";
  }

  save(threadId, text) {
    if (!text) {
      this.clear();
      return;
    }
    sessionStorage.setItem(DRAFT, JSON.stringify({ user: this.user, thread: threadId, text }));
  }

  clear() {
    sessionStorage.removeItem(DRAFT);
  }

  // Where the user was when the session ended (the page's #route), to go back there.
  keepPlace(hash) {
    sessionStorage.setItem(PLACE, JSON.stringify({ user: this.user, hash }));
  }

  // Each is given back once, and only to the user it belongs to.
  takeDraft() {
    const draft = read(DRAFT);
    if (!draft || draft.user !== this.user) {
      this.clear();
      return null;
    }
    return draft;
  }

  takePlace() {
    const place = read(PLACE);
    sessionStorage.removeItem(PLACE);
    return place && place.user === this.user ? place.hash : null;
  }

  forgetAll() {
    sessionStorage.removeItem(DRAFT);
    sessionStorage.removeItem(PLACE);
  }
}
