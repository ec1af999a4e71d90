def test_pay_page(client, link):
    tok = link("INV-de1")
    r = client.get(f"/p/{tok}")
    print(r.status_code, r.headers)
    print(r.text[:6000])
    assert r.status_code == 200
